"""The freshness probe's polls timed to the service's flushes (``FlushCadence`` in ``PollPacing``).

First on a simulated clock (a service that stores everything queued at each tick of its flush timer, or stores
continuously; 100 calls/s, 20 samples/s, the default query share), then against the reference server with an
oracle: a second poller that queries every 20 ms and sees when each sample really became visible.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time

import grpc
import pytest
from conftest import grpc_host
from locust_runs import run_locust

from grpc_user.calls import METHOD_PATHS, QUERY_LOG, WRITE_LOG, write_request
from grpc_user.locust.freshness.cadence import FlushCadence
from grpc_user.locust.freshness.files import error_bound, figures, strip_sentence
from grpc_user.locust.freshness.poller import PollPacing, poll_once
from grpc_user.locust.freshness.probe import PROBE_KEY, SAMPLE_KEY, FreshnessProbe, Look
from grpc_user.pb import log_service_pb2 as pb

SHARE = 0.015  # --freshness-query-share 1.5, the default
WALL = 1_000_000.0  # the simulated logs' epoch timestamps start here


class Found:
    """Each sample's acknowledgement, the poll that found it and its bracket (s): the probe's figures, per sample."""

    def __init__(self, probe: FreshnessProbe) -> None:
        self.probe = probe
        self.acked: dict[int, float] = {}
        self.found: dict[int, tuple[float, float, bool]] = {}  # number: (found at, bracket, by a timed poll)
        self._looked: dict[int, float] = {}
        self.at_stop = 0

    def before(self) -> None:
        """Before a poll: when each pending sample was last looked for (or acknowledged)."""
        self._looked = {sample.number: max(sample.last_look, sample.acked_at) for sample in self.probe.pending}

    def seen(self, look: Look) -> None:
        """After a poll: the samples it found."""
        for sample in look.current + look.overdue:
            if not self.probe.pending.has(sample) and sample.number not in self.found:
                bracket = look.asked_at - self._looked[sample.number]
                self.found[sample.number] = (look.asked_at, bracket, look.windowed)


def service(probe: FreshnessProbe, cut: float):
    """A QueryLog answered with every pending sample queued before ``cut``."""
    logs = [pb.LogEntry(metadata={PROBE_KEY: "sim", SAMPLE_KEY: str(sample.number)}) for sample in probe.pending
            if sample.acked_at - 0.002 < cut]  # fmt: skip
    return lambda path, payload: pb.QueryLogResponse(success=True, logs=logs).SerializeToString()


def simulate(stored_before, seconds: float, rate: float = 100.0, after_stop: float = 5.0):
    """The probe and its pacing over ``seconds`` of calls at ``rate`` and ``after_stop`` s more, on a 1 ms clock;
    ``stored_before(t)``: the service has stored every log queued before that moment at ``t``."""
    probe = FreshnessProbe("sim", rate=20, poll_interval=0.1)
    probe._wall_offset = WALL
    clock, stopped = [0.0], [-1.0]
    pacing = PollPacing(0.1, SHARE, lambda: int(min(clock[0], seconds) * rate), 0.0, lambda: stopped[0],
                        cadence=FlushCadence(0.1))  # fmt: skip
    found, last = Found(probe), float("-inf")
    for tick in range(int((seconds + after_stop) * 1000)):
        now = clock[0] = tick / 1000
        if now >= seconds and stopped[0] < 0:
            stopped[0], found.at_stop = now, probe.queries
        if now < seconds and tick % round(1000 / rate) == 0 and now >= probe.due:
            request = write_request("x", run_id="r")
            request.log_entry.timestamp = dt.datetime.fromtimestamp(WALL + now, dt.UTC).isoformat()
            sample = probe.tag(WRITE_LOG, "WriteLog", request, now)
            if sample is not None:
                probe.untag(sample)
                probe.acked(sample, now + 0.002)
                found.acked[sample.number] = now + 0.002
        if len(probe.pending) and pacing.ready(now, last, probe.queries):
            last = now
            found.before()
            poll_once(probe, service(probe, stored_before(now)), lambda now=now: now, windowed=pacing.timed,
                      seen=lambda look: (found.seen(look), pacing.looked(look)))  # fmt: skip
    return probe, pacing, found


def flush_timer(period: float, phase: float = 0.7, jitter: float = 0.02, seed: int = 1):
    """A flusher that stores everything queued at each of its ticks, ``period`` + up to ``jitter`` s apart."""
    draw, ticks = random.Random(seed), [phase]
    while ticks[-1] < 60:
        ticks.append(ticks[-1] + period + draw.uniform(0, jitter))
    return lambda now: max((tick for tick in ticks if tick <= now), default=-1.0)


def test_a_two_second_flush_timer_is_followed_and_its_flushes_found_within_a_poll_interval():
    """Polled evenly at 1.5% of 100 calls/s, a poll every ~0.7 s: every figure late by up to 0.7 s. Once two
    flushes are seen one period apart, two or three polls 100 ms apart around each predicted one."""
    probe, pacing, found = simulate(flush_timer(2.0), seconds=12)
    assert pacing.cadence.locked and len(found.found) == len(found.acked) >= 235
    timed = [bracket for _, bracket, windowed in found.found.values() if windowed]
    assert len(timed) >= 0.55 * len(found.found), "every flush from the fourth on"
    assert max(timed) <= 0.1 + 0.002 and probe.cadence_gap == max(timed), "0.1 s apart on a 1 ms clock"
    assert probe.cadence_found == len(timed) and probe.max_poll_gap < 1.0
    assert probe.queries <= SHARE * 1200 + 1, "the polls after the stop included"


def test_a_service_that_stores_all_the_time_is_polled_evenly_within_the_share():
    """A store-rate limited service makes a few logs visible at every poll: no cadence to follow."""
    probe, pacing, found = simulate(lambda now: now * 0.4, seconds=12, after_stop=25)
    assert not pacing.cadence.locked and probe.cadence_found == 0
    assert len(found.found) == len(found.acked)
    assert found.at_stop <= SHARE * 1200 + 1, "past the budget only after the stop, to find the backlog"


def test_a_flush_timer_too_fast_for_the_share_is_polled_evenly():
    """0.5 s flushes: two polls per flush would be 4 queries/s, the share pays for 1.5."""
    probe, pacing, found = simulate(flush_timer(0.5), seconds=12)
    assert probe.cadence_found == 0 and len(found.found) == len(found.acked)
    assert probe.queries <= SHARE * 1200 + 1


def test_a_timer_that_moves_is_lost_then_followed_again():
    """The service restarts 6 s in: its flushes come 0.9 s later than predicted from then on."""
    before, after = flush_timer(2.0), flush_timer(2.0, phase=7.6)
    probe, pacing, found = simulate(lambda now: before(now) if now < 6.5 else after(now), seconds=20)
    assert pacing.cadence.locked and len(found.found) == len(found.acked)
    assert probe.cadence_gap <= 0.1 + 0.002 or max(b for _, b, w in found.found.values() if w) == probe.cadence_gap
    late = [number for number, (at, _, windowed) in found.found.items() if windowed and at > 14]
    assert late, "followed again after the move"


def test_a_five_second_run_stays_under_two_percent_the_polls_after_the_stop_included():
    for flushes in (flush_timer(0.5), flush_timer(2.0), flush_timer(2.0, phase=1.9)):
        probe, _, found = simulate(flushes, seconds=5)
        assert len(found.found) == len(found.acked)
        assert probe.queries < 0.02 * 500, probe.queries


def test_the_output_names_the_samples_the_windows_timed_and_their_own_bound_beside_the_run_s():
    probe = FreshnessProbe("run", 20, 0.1)
    for latency in (300.0, 900.0, 1500.0):
        probe.record("WriteLog", latency)
    probe.samples["WriteLog"] = 3
    probe.max_poll_gap, probe.cadence_gap, probe.cadence_found = 0.9175, 0.101, 2
    data = figures(probe, 20)
    assert (data["cadence_samples"], data["cadence_poll_gap_ms"], data["max_poll_gap_ms"]) == (2, 101.0, 917.5)
    timed = "late by at most 918 ms, the largest gap between the polls that saw a sample; 101 ms for the 2 of 3 found"
    assert timed in error_bound(data) and "101 ms for the 2 timed to the flushes" in strip_sentence(data)
    probe.cadence_gap, probe.cadence_found = 0.0, 0
    untimed = figures(probe, 20)
    assert untimed["cadence_poll_gap_ms"] is None and "timed" not in error_bound(untimed) + strip_sentence(untimed)


# Against the reference server: each sample's bracket checked against when an oracle saw it.


@pytest.mark.slow  # real time: a server's flush timer, or a real Locust run
def test_every_bracket_holds_the_moment_an_oracle_polling_every_20_ms_saw_the_sample(serve):
    """Writes at 100 calls/s, the probe at its defaults and timed to the 2 s flush; a second poller queries the
    samples every 20 ms. Each sample was seen by the oracle after the probe's last look without it and no later
    than 20 ms (and a query) after the probe found it: the bracket holds the truth, and the bound covers the
    brackets."""
    server = serve("--flush-period", "2", "--flush-batch", "100000")
    probe = FreshnessProbe("oracle", rate=20, poll_interval=0.1)
    started = time.time()
    pacing = PollPacing(0.1, SHARE, lambda: calls[0], started, lambda: stopped[0], cadence=FlushCadence(0.1))
    calls, stopped, oracle, done = [0], [0.0], {}, threading.Event()
    found, offset = Found(probe), time.time() - time.monotonic()

    def watch() -> None:
        with grpc.insecure_channel(server.target) as channel:
            query = channel.unary_unary(METHOD_PATHS[QUERY_LOG])
            while not done.is_set():
                asked = time.monotonic()
                request = pb.QueryLogRequest(metadata_filters={PROBE_KEY: "oracle"}, limit=100000)
                for entry in pb.QueryLogResponse.FromString(query(request.SerializeToString(), timeout=5)).logs:
                    oracle.setdefault(int(entry.metadata[SAMPLE_KEY]), asked)
                time.sleep(max(0.02 - (time.monotonic() - asked), 0))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with grpc.insecure_channel(server.target) as channel:
            call = lambda path, payload: channel.unary_unary(path)(payload, timeout=5)  # noqa: E731
            last, start = float("-inf"), time.monotonic()
            while time.monotonic() - start < 16 and (time.monotonic() - start < 12 or len(probe.pending)):
                now = time.monotonic()
                if now - start < 12 and now >= start + calls[0] / 100:
                    request = write_request("log", run_id="r")
                    sample = probe.tag(WRITE_LOG, "WriteLog", request, now) if now >= probe.due else None
                    payload = request.SerializeToString()
                    if sample is not None:
                        probe.untag(sample)
                    call(METHOD_PATHS[WRITE_LOG], payload)
                    calls[0] += 1
                    if sample is not None:
                        probe.acked(sample, time.monotonic())
                        found.acked[sample.number] = sample.acked_at
                elif now - start >= 12 and not stopped[0]:
                    stopped[0] = time.time()
                if len(probe.pending) and pacing.ready(time.time(), last, probe.queries):
                    last = time.time()
                    found.before()
                    poll_once(probe, call, windowed=pacing.timed,
                              seen=lambda look: (found.seen(look), pacing.looked(look, offset)))  # fmt: skip
                time.sleep(0.001)
            time.sleep(0.1)
    finally:
        done.set()
        watcher.join()
    assert len(found.found) == len(found.acked) >= 230 and set(oracle) >= set(found.found)
    # The oracle queries on a channel of its own, answered by another of the server's query threads: once (1 sample
    # of 240, in a CI run) it saw a log 28 ms before a look of the probe's that did not return it.
    for number, (at, bracket, _) in found.found.items():
        assert at - bracket - 0.05 <= oracle[number] <= at + 0.02 + 0.08, (number, at, bracket, oracle[number])
    assert probe.max_poll_gap >= max(bracket for _, bracket, _ in found.found.values())
    timed = [bracket for _, bracket, windowed in found.found.values() if windowed]
    # 100 ms apart, and a busy machine's delay: 152 ms once in a CI run with 5 test processes (the Locust test below
    # allows 200 ms for the same reason).
    assert len(timed) >= 0.1 * len(found.found) and probe.cadence_gap == max(timed) <= 0.2, (len(timed), timed)
    assert probe.queries < 0.02 * calls[0]


# Through real Locust, at its defaults.


@pytest.mark.slow  # real time: a server's flush timer, or a real Locust run
def test_a_two_second_flush_at_100_calls_per_second_is_measured_within_100_ms_under_2_percent_queries(serve, tmp_path):
    """At its defaults, where an even 1.5% of 100 calls/s polled every ~0.7 s (p50 1,550 ms, p95 2,501 ms for a
    2 s flush, every figure late by up to 693 ms): once the flushes are followed, their samples are late by at most
    a poll interval (and a busy machine's delay), and every figure by at most the largest gap stated."""
    server = serve("--flush-period", "2", "--flush-batch", "100000")
    run = run_locust("single", grpc_host(server), tmp_path, "--target-rps", "100", "--audit-settle", "3",
                     run_time="15s", timeout=150)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    data = run.json("freshness")
    row, gap = data["aggregated"], data["max_poll_gap_ms"]
    assert data["probe_queries"] < 0.02 * run.requests(), (data["probe_queries"], run.requests())
    # Followed from the third flush seen (~5 s in; later on a busy machine, whose reference server's first flush
    # periods stray by up to 0.5 s); 100 ms apart, and a few ms more when both cores are busy.
    assert data["cadence_samples"] >= 0.1 * row["visible"] and data["cadence_poll_gap_ms"] <= 200, data
    assert row["visible"] == row["samples"] >= 250
    assert 700 <= row["p50"] <= 1000 + gap and 1600 <= row["p95"] <= 2000 + gap, row
    line = f"{data['cadence_poll_gap_ms']:,.0f} ms for the {data['cadence_samples']:,} of {row['visible']:,} found"
    assert line in run.stderr


@pytest.mark.slow  # real time: a server's flush timer, or a real Locust run
def test_a_five_second_run_s_queries_stay_within_the_share_the_polls_after_the_stop_included(serve, tmp_path):
    """Before, the share held only while the test ran: 9 queries for 500 calls (1.8%), 12 (2.4%) with a 2 s flush."""
    server = serve("--flush-period", "0.5", "--flush-batch", "100000")
    run = run_locust("single", grpc_host(server), tmp_path, "--target-rps", "100", run_time="5s")
    assert run.returncode == 0, run.stderr[-2000:]
    data = run.json("freshness")
    assert data["visible"] == data["samples"] >= 80
    assert data["probe_queries"] <= 0.015 * run.requests() + 1, (data["probe_queries"], run.requests())
