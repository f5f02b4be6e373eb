"""The freshness probe at its defaults: every found sample bracketed by polls a poll interval apart, the query share
limiting how many samples are taken (``SamplingWindows``), never how often they are polled, and never passed.

First on a simulated clock (a service that stores everything queued at each tick of its flush timer, slowly, or
never; 100 or 1,000 calls/s), then against the reference server through real Locust at the defaults.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import random
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc
import pytest
from conftest import grpc_host
from locust_runs import run_locust

from grpc_user.calls import METHOD_PATHS, QUERY_LOG, WRITE_LOG, write_request
from grpc_user.locust.freshness.files import figures, strip_sentence, summary_line
from grpc_user.locust.freshness.pending import RELATIVE_GAP, Sample
from grpc_user.locust.freshness.poller import PollPacing, poll_once
from grpc_user.locust.freshness.probe import PROBE_KEY, SAMPLE_KEY, FreshnessProbe
from grpc_user.locust.freshness.windows import (
    LEARN_FIRST_AT_SECONDS,
    MAX_RELATIVE_GAP,
    TOLD_WITHIN_SECONDS,
    QueryBudget,
    SamplingWindows,
    SharedLearning,
)
from grpc_user.pb import log_service_pb2 as pb

SHARE = 0.015  # --freshness-query-share 1.5, the default
WALL = 1_000_000.0  # the simulated logs' epoch timestamps start here


@dataclass
class Simulated:
    """A simulated test: the probe, the calls made, the windows, and each found sample's bracket, visibility and
    acknowledgement (s)."""

    probe: FreshnessProbe
    calls: int
    windows: SamplingWindows
    brackets: list[float]
    found: list[float]
    acked: list[float]


@dataclass
class Relay:
    """The master's relay of what a worker learnt, as one simulated worker sees it: ``learnt`` (pace, cycle s) from
    ``at`` s on; ``sent``: what this worker told, (s, pace, cycle)."""

    learns: bool
    learnt: tuple[str, float] | None = None
    at: float = math.inf
    now: float = 0.0
    sent: list[tuple[float, str, float]] = field(default_factory=list)

    def shared(self) -> SharedLearning:
        return SharedLearning(self.learns, lambda: self.learnt if self.now >= self.at else None,
                              lambda pace, cycle: self.sent.append((self.now, pace, cycle)))  # fmt: skip


def simulate(stored_before, seconds: float, rate: float = 100.0, after_stop: float = 10.0, seed: int = 1,
             known_end: bool = True, first_second_rate: float | None = None, share: float = 1.0,
             relay: Relay | None = None, looked_after_stop: float = math.inf,
             ack_delay: Callable[[float], float] = lambda queued: 0.002,
             query_share: float = SHARE, failing_from: float = math.inf,
             watch: Callable[[float, SamplingWindows], None] = lambda now, windows: None) -> Simulated:  # fmt: skip
    """The probe, its windows and its polls over ``seconds`` of calls at ``rate`` (``first_second_rate`` over the
    first second, when given: a slow start) and ``after_stop`` s more, on a 1 ms clock; ``stored_before(t)``: the
    service has stored every log queued before that moment at ``t``; ``known_end``: the test's length is known
    (``-t``); ``share``: this process's share of the sample rate (a worker's); ``relay``: a worker's learning shared
    with the others; ``looked_after_stop``: how long the samples are looked for after the stop (``--audit-timeout``);
    ``ack_delay(t)``: how long after it was queued at ``t`` a call's acknowledgement reaches the client (s);
    ``query_share``: --freshness-query-share as a fraction;
    ``failing_from``: from then on the service acknowledges no call (the calls heard once a second say so);
    ``watch(now, windows)``: called after each step of the windows (every 10 ms)."""
    probe = FreshnessProbe("sim", rate=20, poll_interval=0.1, share=lambda: share, sampling=False)
    probe._wall_offset, probe._started = WALL, 0.0
    calls, stopped = [0], [-1.0]
    ends = (lambda: seconds) if known_end else (lambda: math.inf)
    budget = QueryBudget(query_share, lambda: calls[0], 0.0, lambda: stopped[0], ends)
    shared = relay.shared() if relay is not None else None
    windows = SamplingWindows(budget, 0.1, random.Random(seed).random, shared=shared, after_stop=looked_after_stop)
    pacing = PollPacing(0.1, budget, windows=windows)
    last, run = float("-inf"), Simulated(probe, 0, windows, [], [], [])
    held_found: dict[int, tuple[list[float], ...]] = {}  # each held sample's bracket, visibility, acknowledgement
    queued: dict[int, float] = {}  # each sample's moment in the service's queue (s)
    acks: list[tuple[float, Sample]] = []  # acknowledgements on their way to the client: (reach it at s, sample)
    for tick in range(int((seconds + after_stop) * 1000)):
        now = tick / 1000
        if relay is not None:
            relay.now = now
        if now >= seconds and stopped[0] < 0:
            stopped[0] = now
        for ack in [ack for ack in acks if ack[0] <= now + 1e-9]:
            acks.remove(ack)
            probe.acked(ack[1], ack[0])
        if tick % 10 == 0:
            pacing.step(probe, now, now)
            watch(now, windows)
            probe.refresh_due()
        calls_at = first_second_rate if first_second_rate is not None and now < 1.0 else rate
        if now < seconds and tick % round(1000 / calls_at) == 0:
            calls[0] += 1
            if now >= failing_from:  # a call heard (sampled or not) that the service did not acknowledge
                probe.heard(False, now, "UNAVAILABLE")
            elif now >= probe.due:
                request = write_request("x", run_id="r")
                request.log_entry.timestamp = dt.datetime.fromtimestamp(WALL + now, dt.UTC).isoformat()
                sample = probe.tag(WRITE_LOG, "WriteLog", request, now)
                if sample is not None:
                    probe.untag(sample)
                    queued[sample.number] = now
                    acks.append((now + ack_delay(now), sample))
        if pacing.ready(probe, now, last, now):
            last, cut = now, stored_before(now)
            looked = {
                sample.number: (max(sample.last_look, sample.acked_at), sample.acked_at, sample.held)
                for sample in probe.pending
            }
            logs = [pb.LogEntry(metadata={PROBE_KEY: "sim", SAMPLE_KEY: str(sample.number)})
                    for sample in probe.pending if queued[sample.number] < cut]  # fmt: skip
            answer = pb.QueryLogResponse(success=True, logs=logs).SerializeToString()
            poll_once(probe, lambda path, payload, answer=answer: answer, lambda now=now: now)
            for log in logs:
                number = int(log.metadata[SAMPLE_KEY])
                looked_at, acked_at, held = looked[number]
                found = held_found.setdefault(number, ([], [], [])) if held else (run.brackets, run.found, run.acked)
                for kept, value in zip(found, (now - looked_at, now - acked_at, acked_at), strict=True):
                    kept.append(value)
    released = {sample.number for sample in probe.held}
    if probe.settle_held():  # the finish: a held window's samples are counted when no other sample was
        for number in released & held_found.keys():
            for kept, held in zip((run.brackets, run.found, run.acked), held_found[number], strict=True):
                kept.extend(held)
    run.calls = calls[0]
    return run


def flush_timer(period: float, phase: float, jitter: float = 0.02, seed: int = 1):
    """A flusher that stores everything queued at each of its ticks, ``period`` + up to ``jitter`` s apart."""
    draw, ticks = random.Random(seed), [phase]
    while ticks[-1] < 100:
        ticks.append(ticks[-1] + period + draw.uniform(0, jitter))
    return lambda now: max((tick for tick in ticks if tick <= now), default=-1.0)


def slow_store(store_rate: float, offered: float = 100.0):
    """A store that takes ``store_rate`` of the ``offered`` logs/s, in order: a log queued at t is stored at
    t x offered / store_rate."""
    return lambda now: now * store_rate / offered


def test_a_two_second_flush_at_100_calls_per_second_in_30_s_is_measured_in_a_window_at_the_poll_interval():
    """Before, the first window opened early at 0.4 s (to learn how slow the store is) and counted: figures late by
    up to 0.33 to 0.43 s, p50 1,135 ms and max 2,201 ms in 30 s at 100 calls/s. Now the store's pace is learnt from
    single samples (never counted); a store that keeps up gets windows at the poll interval only, funded by the
    calls until the test's known end: every figure within ~0.1 s, the windows started at random moments, so over
    flush timers of every phase the visibility is spread evenly over 0..2 s."""
    p50s, p95s = [], []
    for seed in range(6):
        timer = flush_timer(2.0, phase=random.Random(100 + seed).uniform(0, 2), seed=seed)
        run = simulate(timer, seconds=30, seed=seed)
        probe = run.probe
        assert run.windows.pace == "fine" and run.windows.limited and probe.held_back >= 1, seed
        assert len(run.brackets) == probe.samples["WriteLog"] >= 35, seed
        # ~0.105 s before the learning took the flush cycle (a few more queries), 0.112 to 0.118 since
        assert max(run.brackets) <= 0.125 and probe.max_poll_gap == pytest.approx(max(run.brackets)), seed
        assert max(run.found) <= 2.0 + 0.02 + 0.125, seed  # the flush timer's jitter, the bracket
        assert probe.queries <= SHARE * run.calls, "the last sweep's query kept aside"
        found = probe.histograms.combined()
        p50s.append(found.value_at(50) / 1000)
        p95s.append(found.value_at(95) / 1000)
    assert 900 <= statistics.median(p50s) <= 1150 and 1800 <= statistics.median(p95s) <= 2050, (p50s, p95s)


def test_acknowledgements_that_reach_a_stalled_client_late_are_not_taken_for_the_next_flush():
    """Fresh-clone CI runs learnt a 2 s flush as 442, 534 (a web UI test) and 853 ms: samples the first flush stored,
    whose acknowledgements reached the busy client after the poll that found that flush, were found at the next
    poll, their first look, and taken for samples of the second flush. Here the client stalls around each flush:
    the acknowledgements of the calls sent from ``before`` s before it to ``after`` s after it all reach it at the
    stall's end. On the acknowledgements (before): 0.54 s, 1.46 s or PACED in 6 of 8 flush phases. Now a sample is of
    a later flush only if a poll sent after the first flush was seen missed it, and a flush is placed by the latest
    sent sample found (a log is queued after its call is sent): 2 s, short by at most the stall before the flush
    (those calls' samples could not be looked for: they were not acknowledged yet)."""
    for before, after in ((0.06, 0.45), (0.2, 0.3)):
        for seed in range(8):
            phase = random.Random(400 + seed).uniform(0, 2)

            def ack_delay(queued: float, phase: float = phase, before: float = before, after: float = after) -> float:
                flush = phase + 2.0 * math.ceil((queued - after - phase) / 2.0)  # the first flush after queued - after
                return flush + after - queued if flush - before <= queued < flush + after else 0.002

            run = simulate(flush_timer(2.0, phase=phase, jitter=0.0), 30, seed=seed, ack_delay=ack_delay)
            cycle = run.windows.cycle
            assert run.windows.pace == "fine" and 2.0 - before - 0.01 <= cycle <= 2.01, (before, seed, cycle)


def test_a_learning_sample_in_flight_when_the_learning_ends_is_dropped_and_does_not_spend_the_window_share():
    """A 10 s light run's real-time test got the learning's coarse figure (1.5 s bound) instead of its window (~0.5
    s) in 3 of 9 runs with both cores busy: a learning sample whose call was in flight when the learning ended was
    acknowledged after its held ones were dropped, then polled alone every 100 ms until found, spending the share
    the run's only window needed and keeping it from opening. Here every acknowledgement takes 60 ms (before: no
    window in 6 of 10 flush phases). Such a sample is dropped with its learning now: one window each, ~0.5 s."""
    for seed in range(10):
        timer = flush_timer(2.0, phase=0.2 * seed, seed=seed)
        run = simulate(timer, 10, seed=seed, after_stop=5, ack_delay=lambda queued: 0.06)
        assert run.windows.windows == 1 and max(run.brackets) <= 0.6, (seed, run.windows.windows, max(run.brackets))


def test_a_learning_that_finds_nothing_within_its_patience_counts_its_samples_as_the_first_window():
    """A new user killed the service ~4 s into a 15 s test while the probe learnt the store's pace: nothing was found
    within the learning's patience, its 29 samples were dropped, and the line said '0 of 0 samples visible' (the
    samples taken were neither visible, never visible nor unknown). A learning that finds nothing is now the first
    window of a backlog (or of a service that lost them): counted and looked for to the end, then visible, never
    visible or unknown by the audit's verdict. Here a service that stores nothing: before, 200 dropped and 24
    counted; now all 200 counted, pending at the end, within the share."""
    run = simulate(lambda now: -1.0, seconds=15, after_stop=5)
    probe = run.probe
    assert run.windows.pace == "paced" and probe.held_back == 0 and probe.counted() == len(probe.pending) >= 150
    assert probe.queries <= SHARE * run.calls + 1


def test_a_store_that_stores_as_it_is_asked_to_is_learnt_to_keep_up():
    """No poll ever misses a sample of a store that stores each log before the next poll: no sample is proven to be
    of a later flush, but the acknowledgements found keep moving on. It keeps up (FINE), learnt within the
    learning's patience, and every figure is within a poll interval."""
    run = simulate(lambda now: now, 30)
    assert run.windows.pace == "fine" and len(run.found) == run.probe.samples["WriteLog"] >= 35
    assert max(run.found) <= 0.11 and max(run.brackets) <= 0.11


def test_flush_periods_longer_than_two_seconds_are_sampled_over_a_whole_cycle_and_spread_evenly_over_it():
    """Before, a window sampled for at most 2 s and the store's pace was judged by one sample looked for at 2 s: a 6 s
    flush gave p50s from 1,143 to 3,785 ms over six phases (PACED: a store that keeps up taken for a slower one).
    Now learning samples until the store was seen storing twice, which gives the flush cycle from the acknowledgements
    (6.0 s); a window then samples for that whole cycle, polled at a gap the share pays for (at most a tenth of it):
    p50 ~ period / 2, p95 ~ 0.95 period, max ~ period + the bound, in every run."""
    for period in (5.0, 6.0):
        for seed in range(3):
            run = simulate(flush_timer(period, phase=random.Random(100 + seed).uniform(0, period), seed=seed), 30,
                           seed=seed, after_stop=15)  # fmt: skip
            probe, found = run.probe, run.probe.histograms.combined()
            assert run.windows.pace == "fine" and abs(run.windows.cycle - period) <= 0.1, (period, seed)
            assert len(run.found) == probe.samples["WriteLog"] >= 15 * period, (period, seed)
            assert max(run.brackets) <= period / 10 and probe.queries <= SHARE * run.calls, (period, seed)
            assert abs(found.value_at(50) / 1e6 - period / 2) <= 0.12 * period / 2, (period, seed)
            assert abs(found.value_at(95) / 1e6 - 0.95 * period) <= 0.1 * period, (period, seed)
            assert found.value_at(100) / 1e6 <= period + 0.02 + max(run.brackets), (period, seed)


def test_a_window_of_a_store_that_keeps_up_samples_the_fewest_whole_cycles_that_make_two_seconds():
    """A 2 s flush learnt as 1.98 s sampled two cycles (3.96 s), which the share closed early: 57 samples, p50 765 ms
    against a truth of ~1,000 in a real 30 s run. Now one; a store at work all the time (0.45 s) five."""
    windows = SamplingWindows(QueryBudget(SHARE, lambda: 0, 0.0), 0.1, pace="fine")
    for cycle, sampled in ((1.98, 1.98), (2.0, 2.0), (6.0, 6.0), (0.45, 2.25), (1.05, 2.1)):
        windows.cycle = cycle
        assert windows._sampling_for(cycle) == pytest.approx(sampled), cycle


def test_a_worker_told_the_stores_pace_by_the_one_that_learnt_it_saves_its_share_for_a_finer_window():
    """--processes 2, 12 s at 100 calls/s, a 2 s flush: each worker learnt the store's pace on its own, ~5 of its ~9
    queries, and got 2 to 12 samples late by up to ~1.3 s. Now one worker learns and the master relays it; the other
    spends no query on learning and opens a window at the gap its whole share pays for (alone: 0 or 1 sample, late
    by up to 1.4 s; told: 13 to 20, within 0.62 s)."""
    for seed in range(3):
        timer = flush_timer(2.0, phase=random.Random(300 + seed).uniform(0, 2), seed=seed)
        alone = simulate(timer, 12, rate=50, share=0.5, seed=seed)
        relay = Relay(learns=False, learnt=("fine", 2.0), at=5.6)
        told = simulate(timer, 12, rate=50, share=0.5, seed=seed, relay=relay)
        assert told.windows.pace == "fine" and told.probe.held_back == 0 and not relay.sent, "it never learnt"
        assert len(told.found) == told.probe.samples["WriteLog"] >= 12, (seed, len(told.found))
        assert max(told.brackets) <= 0.7 < max(alone.brackets + [math.inf]), (seed, told.brackets, alone.brackets)
        assert told.probe.queries <= SHARE * told.calls


def test_the_worker_that_learns_tells_the_others_and_holds_back_its_coarse_last_window():
    """It spent its share learning: a last window at the gap it still pays for (0.98 to 1.3 s in real runs) would
    widen the bound of the others' finer ones; held back, the master counts it only if no worker counted any."""
    relay = Relay(learns=True)
    run = simulate(flush_timer(2.0, phase=0.7), 12, rate=50, share=0.5, relay=relay, seed=1)
    assert [pace for _, pace, _ in relay.sent] == ["fine"], relay.sent
    # to the sample spacing (0.1 s at its 10 samples/s), early enough for the others' windows
    assert abs(relay.sent[0][2] - 2.0) <= 0.15 and relay.sent[0][0] <= 8, relay.sent
    assert run.windows.windows == 0 or run.windows.holds, "its own window, if any, is held back"


def test_a_worker_told_nothing_learns_itself_in_time_when_the_learning_worker_is_lost():
    relay = Relay(learns=False)
    run = simulate(flush_timer(2.0, phase=0.3), 40, rate=50, share=0.5, relay=relay, seed=1)
    assert len(relay.sent) == 1 and relay.sent[0][0] >= LEARN_FIRST_AT_SECONDS + TOLD_WITHIN_SECONDS, relay.sent
    assert run.windows.pace == "fine" and len(run.found) >= 15 and max(run.brackets) <= 0.3


def test_a_fifth_of_a_second_flush_at_100_calls_per_second_in_30_s_is_all_visible_within_about_0_3_s():
    """Before: max 428 to 500 ms in the simulation (420 ms measured), each figure late by up to 0.4 s."""
    for seed in range(4):
        run = simulate(flush_timer(0.2, phase=random.Random(200 + seed).uniform(0, 0.2), seed=seed), 30, seed=seed)
        assert len(run.found) == run.probe.samples["WriteLog"] >= 35, seed
        assert max(run.found) <= 0.2 + 0.02 + 0.115 and max(run.brackets) <= 0.115, (seed, max(run.found))
        assert run.probe.queries <= SHARE * run.calls


def test_a_store_slower_than_the_load_is_polled_by_the_samples_age_and_measured_within_a_tenth_of_the_truth():
    """Before, a window's budget went in its first seconds, before any sample could be visible; its samples were then
    looked for half their age apart, none past 15 s: the figures ~2x the truth at --store-rate 60, none at 40. Now
    the polls past a window's funded tail are a tenth of the youngest pending sample's age apart, within the share:
    each found sample's bracket is about a tenth of its visibility, and the figures grow through the run. A window
    whose samples would be visible only after the test opens only if what is saved pays for their polls until then
    (before, a window 25 s into 30 s at --store-rate 60 left 40 samples to the last sweep, late by 18 s): every
    sample is found while the share lasts, none left pending. A window opens while an earlier one's samples are still
    pending (one QueryLog covers them all): at --store-rate 60 the windows come through the run (before, one window's
    samples took ~9 s to be visible and were the run's only ones in one seed of two: acknowledged 10.5 to 12.5 s)."""
    for store_rate, seed in ((60, 0), (60, 1), (60, 2), (40, 1)):
        run = simulate(slow_store(store_rate), seconds=30, after_stop=30, seed=seed, looked_after_stop=30)
        truth = [(acked - 0.002) * 100 / store_rate - acked for acked in run.acked]  # stored at t x 100 / store rate
        assert not run.probe.pending and run.windows.pace == "paced", store_rate
        assert len(run.found) >= 20 and run.windows.windows >= (2 if store_rate == 60 else 1), (store_rate, seed)
        if store_rate == 60:  # samples acknowledged over more than a quarter of the run, the last past its middle
            assert max(run.acked) - min(run.acked) >= 7 and max(run.acked) >= 16, (seed, min(run.acked), max(run.acked))
        assert abs(statistics.median(run.found) / statistics.median(truth) - 1) <= 0.1, store_rate
        assert all(
            bracket <= max(0.4, 0.15 * found) + 0.7 for bracket, found in zip(run.brackets, run.found, strict=True)
        )
        assert max(run.found) >= min(run.found) + 1, "visibility grows through the run"
        assert run.probe.queries <= SHARE * run.calls


def test_a_store_learnt_slower_than_the_load_keeps_the_learnings_backlog_as_its_first_window():
    """--store-rate 40 of 100 calls/s, 30 s: the learning (from 2 s) dropped its samples and the first window opened
    ~9 to 11 s in; the figures covered ~2 s of acknowledgements (one window, 34 samples). Now the learning's samples
    acknowledged after the latest one stored are counted, polled by their age: the figures start ~2 s into the run and
    windows follow through it, each bracket within about a tenth of its visibility. A window whose samples would be
    visible only after the looking ends (--audit-timeout 15 s after the stop) does not open: none is left unknown."""
    for seed in range(3):
        run = simulate(slow_store(40), seconds=30, after_stop=15, seed=seed, looked_after_stop=15)
        assert run.windows.pace == "paced" and not run.probe.pending, seed
        assert min(run.acked) <= 3 and max(run.acked) >= 12 and run.windows.windows >= 3, (seed, run.acked)
        assert max(run.found) >= min(run.found) + 10, "visibility grows through the run"
        assert all(bracket <= 0.2 * found + 0.2 for bracket, found in zip(run.brackets, run.found, strict=True))
        assert run.probe.queries <= SHARE * run.calls + 1


def test_a_store_slower_than_the_load_is_measured_to_the_runs_last_seconds_within_the_share():
    """--store-rate 40 and 60 of 100 calls/s, 30 s, looked for 60 s after the stop (--audit-timeout 60): before, each
    late window was charged the polls that follow its samples from their first seconds as if alone, and none opened
    after ~18 s: the figures covered acknowledgements 2 to ~18 s (max 22 to 28 s against 45 s at the end at 40; 13 to
    15 s against 20 s at 60). Now one chain of polls follows every pending sample (a backlog stores in order: polls a
    tenth of the oldest pending one's age apart) and a window is charged that chain: counted samples are acknowledged
    in the run's last seconds, the largest figure within a fifth of the truth at the end, each bracket within a fifth
    of its figure and within the bound stated, and the share kept."""
    for store_rate, seed in ((40, 0), (40, 2), (60, 1), (60, 3)):
        run = simulate(slow_store(store_rate), seconds=30, after_stop=60, seed=seed, looked_after_stop=60)
        at_the_end = 30 * 100 / store_rate - 30  # a log acknowledged at 30 s is stored at 30 x 100 / store rate
        assert not run.probe.pending and max(run.acked) >= 26, (store_rate, seed, max(run.acked))
        assert abs(max(run.found) / at_the_end - 1) <= 0.2, (store_rate, seed, max(run.found), at_the_end)
        assert all(bracket <= 0.2 * found for bracket, found in zip(run.brackets, run.found, strict=True))
        assert max(run.brackets) <= run.probe.max_poll_gap + 1e-9
        assert run.probe.queries <= SHARE * run.calls + 1, (run.probe.queries, run.calls)


def test_after_the_stop_a_share_too_small_for_polls_a_tenth_of_the_age_apart_stretches_them_up_to_a_fifth():
    """--store-rate 40 of 100 calls/s, 30 s, --freshness-query-share 1: after the stop (nothing accrues) what is saved
    cannot pay for polls a tenth of the oldest pending sample's age apart until the youngest is visible. Polled a
    tenth apart regardless, the share ran out: the counted samples' acknowledgements ended at 24.5 s (157 samples).
    Stretched as far as needed, up to a fifth (``_stretched``), they reach the run's end (225), each bracket within
    the poll interval plus a fifth of its figure, the largest stated, and the share kept."""
    for seed in (0, 1):
        run = simulate(slow_store(40), 30, after_stop=60, seed=seed, looked_after_stop=60, query_share=0.01)
        assert not run.probe.pending and max(run.acked) >= 29.5, (seed, max(run.acked))
        # (bracket, figure) of each sample found after the stop
        pairs = [(b, f) for b, f, a in zip(run.brackets, run.found, run.acked, strict=True) if a + f >= 30]
        assert all(bracket <= 0.1 + MAX_RELATIVE_GAP * found + 1e-6 for bracket, found in pairs), seed
        assert any(bracket > 0.1 + RELATIVE_GAP * found for bracket, found in pairs), "stretched past a tenth"
        assert max(run.brackets) <= run.probe.max_poll_gap + 1e-9 and run.probe.queries <= 0.01 * run.calls + 1


def test_a_light_run_too_short_to_fund_a_window_at_the_poll_interval_opens_a_coarser_one_before_its_end():
    """Before: `sampled 0 of 242 asked` in 10 s at 100 calls/s (a window at the poll interval needs ~40 queries, the
    share pays for 15). Now the last window that fits before the end opens at the gap the share pays for."""
    for known_end in (True, False):
        run = simulate(flush_timer(2.0, phase=0.7), seconds=10, after_stop=5, known_end=known_end)
        assert run.probe.samples["WriteLog"] >= 20 and len(run.found) == run.probe.samples["WriteLog"], known_end
        # Without a known end (a worker) the learning's whole flush cycle, held back, is the figure: its polls are
        # up to LEARN_MAX_GAP_SECONDS apart
        assert 0.1 < run.probe.max_poll_gap <= (0.7 if known_end else 1.5) and run.probe.queries <= SHARE * run.calls


def test_a_store_slower_than_the_load_and_a_lossy_one_never_get_more_than_the_share_after_the_stop_either():
    """Before, the polls after the stop went past the share when logs were slow or lost (2.0% to 2.7% of calls)."""
    for stored_before in (lambda now: now * 0.3, lambda now: -1.0):
        run = simulate(stored_before, seconds=40, after_stop=60)
        assert run.probe.samples and run.probe.queries <= SHARE * run.calls, (run.probe.queries, run.calls)


def test_at_500_calls_a_second_the_probe_waits_for_windows_at_the_poll_interval():
    """The share pays for a window at the poll interval within seconds: not worth a coarser one."""
    run = simulate(flush_timer(2.0, phase=0.7), seconds=20, rate=500, after_stop=5)
    assert run.windows.windows >= 2 and len(run.brackets) == run.probe.samples["WriteLog"] >= 100
    assert max(run.brackets) <= 0.1 + 0.01 and run.probe.queries <= SHARE * run.calls


def test_at_1000_calls_a_second_the_share_pays_for_every_poll_and_the_probe_samples_at_its_full_rate():
    run = simulate(flush_timer(0.5, phase=0.3), seconds=10, rate=1000, after_stop=3)
    assert run.windows.windows == 0 and not run.windows.limited
    assert run.probe.samples["WriteLog"] >= 20 * 9 and len(run.brackets) == run.probe.samples["WriteLog"]
    assert run.probe.queries <= SHARE * run.calls
    # After the stop (nothing accrues) the samples still pending are polled a tenth of their age more apart
    assert all(bracket <= 0.1 + 0.0015 + 0.1 * found for bracket, found in zip(run.brackets, run.found, strict=True))
    assert sorted(run.brackets)[len(run.brackets) // 2] <= 0.1 + 0.0015


def test_a_slow_first_second_at_1000_calls_a_second_neither_delays_sampling_at_the_full_rate_nor_says_limited():
    """A busy machine's first second called at a quarter of the rate. Before, the rate was taken since the test's
    start, below the continuous margin until ~4.8 s in, and the probe's first 2 s (it does not sample before it knows
    the rate) counted as withheld: 'limited by the share' (the flaky unpaced test at ~1,090 calls/s). Now the rate is
    the last 2 s' and the share limits nothing before the probe could sample: all the time from ~2.6 s, not limited."""
    run = simulate(flush_timer(0.5, phase=0.3), seconds=6, rate=1000, after_stop=3, first_second_rate=250)
    assert not run.windows.limited and not run.windows.reserved, run.windows.withheld
    assert len(run.brackets) == run.probe.samples["WriteLog"] >= 20 * 3, run.probe.samples
    assert max(run.brackets) <= 0.1 + 0.0015 + 0.1 * max(run.found) and run.probe.queries <= SHARE * run.calls


def test_sampling_at_the_whole_rate_on_a_store_slower_than_the_load_keeps_what_its_samples_need_after_the_stop():
    """1,000 calls/s on a store of 300 logs/s for 5 s: the share pays for a poll every interval, and the probe
    sampled all the time. Before, its polls spent the share as the test stopped: the samples still pending were left
    to the last sweep's wide bracket (measured: p50 21,381 ms against a truth of 12,327). Now it stops sampling while
    what is saved and what accrues until the end still pays for following its samples after the stop (their
    visibility carried by the backlog's growth), and polls them a tenth of their age apart: every sample is found
    by the polls, each within a tenth of its visibility and the interval, within the share."""
    run = simulate(slow_store(300, offered=1000), seconds=5, rate=1000, after_stop=40)
    truth = [(acked - 0.002) * 1000 / 300 - acked for acked in run.acked]
    assert run.windows.reserved and not run.probe.pending and len(run.found) == run.probe.samples["WriteLog"] >= 40
    assert all(bracket <= 0.1 + 0.0015 + 0.1 * found for bracket, found in zip(run.brackets, run.found, strict=True))
    assert abs(statistics.median(run.found) / statistics.median(truth) - 1) <= 0.1
    assert run.probe.queries <= SHARE * run.calls


def test_the_summary_says_how_many_samples_were_taken_of_those_asked_and_why_fewer():
    probe = FreshnessProbe("run", 20, 0.1)
    probe.record("WriteLog", 900.0, time.time())
    probe.samples["WriteLog"], probe.asked, probe.max_poll_gap = 84, 84.4, 0.1
    assert "; sampled" not in summary_line(figures(probe, 20))
    # Issue 25: fewer taken than asked is said whatever the cause (a store-rate 300 run took 85 of 101, silently)
    probe.asked, probe.asked_unsampled = 101.2, 14.6
    line = summary_line(figures(probe, 20))
    assert "; sampled 84 of 101 asked: 15 fell due while the probe did not sample (its first seconds" in line, line
    assert "2 fell due while no call came to take them" in line and "query-share" not in line.split("; sampled")[1]
    probe.held_back = 1
    assert "1 fell due while no call came" in summary_line(figures(probe, 20))
    assert "(owed for 1 s at most) (and 1 taken to learn the store's pace" in summary_line(figures(probe, 20))
    probe.asked, probe.asked_unsampled, probe.held_back = 200.4, 0.0, 0
    probe.sampling_limited = True
    data = figures(probe, 20)
    assert (data["asked"], data["sampling_limited"]) == (200, True)
    assert "; sampled 84 of 200 asked: limited by --freshness-query-share 1.5%" in summary_line(data)


def test_sampling_stopped_for_the_reserve_is_said_as_that_not_as_the_share_s_limit():
    """Issue 25: sampling at the whole rate stopped to keep the share's rest for the samples after the stop (a store
    slower than the load), and the line said 'limited by --freshness-query-share 1.5%', as of a share that paid for
    no sampling. Now it says when sampling stopped and why (``sampling_reserved_at_s``), ``sampling_limited`` false."""
    run = simulate(slow_store(300, offered=1000), seconds=5, rate=1000, after_stop=40)
    windows, probe = run.windows, run.probe
    assert windows.reserved and not windows.limited and windows.reserved_at is not None, windows
    probe.sampling_reserved_at, probe.asked = windows.reserved_at, 20 * 5  # as PollPacing and the poller set them
    data = figures(probe, 20)
    assert data["sampling_reserved_at_s"] == round(windows.reserved_at, 1) and not data["sampling_limited"], data
    line = summary_line(data)
    assert f"sampling stopped {windows.reserved_at:,.1f} s into the test to keep the rest of --freshness-query-share " \
        "1.5% for following the samples taken until they are visible after the stop" in line, line  # fmt: skip
    assert "limited by" not in line and "raise the share to sample longer" in line, line


def test_without_a_known_end_the_first_precise_window_comes_when_said_and_an_earlier_stop_marks_the_coarse_figure():
    """Issue 25: a web UI test without a run time, 100 calls/s, a 2 s flush. The probe said nothing until its first
    window at the poll interval (~31 s in); stopped before, it counted the learning's flush cycle, polled up to 1.5 s
    apart, as the figure (p50 2,419 ms against a truth of 1,000) with nothing to say it was coarse. Now it says when
    the share pays for that window (``precise_at``), the window comes then, and the figure of a test stopped before
    it says it is coarse, its bound, the cycle it measures and what to do."""
    for seed in range(3):
        phase = random.Random(100 + seed).uniform(0, 2)
        early = simulate(flush_timer(2.0, phase, seed=seed), seconds=20, known_end=False, seed=seed)
        said = early.windows.precise_at
        assert 25 <= said <= 40, (seed, said)
        whole = simulate(flush_timer(2.0, phase, seed=seed), seconds=60, known_end=False, seed=seed)
        # it opens at a random moment within a flush cycle of the moment the share pays for it
        assert said - 1 <= min(whole.acked) <= said + 2 + 1, (seed, said, min(whole.acked))
        assert max(whole.brackets) <= 0.125 and not whole.probe.held_released, seed
        data = figures(early.probe, 20, "done")
        assert data["held_released"] and abs(data["flush_cycle_ms"] - 2000) <= 50, data
        assert data["precise_window_at_s"] == round(said, 1) and data["max_poll_gap_ms"] > 1000, data
        line = summary_line(data)
        assert (f"a coarse figure: the test stopped before --freshness-query-share 1.5% paid for a sampling window at "
                f"the poll interval (at its call rate, about {said:,.0f} s into the test), so these are the samples of "
                f"one flush cycle ({data['flush_cycle_ms']:,} ms) taken to learn the store's pace, polled up to "
                f"{data['max_poll_gap_ms']:,.0f} ms apart") in line, line  # fmt: skip
        assert "run longer, or raise the share, for figures within about 100 ms" in line, line
        assert "coarse" not in summary_line(figures(whole.probe, 20, "done"))
    # A store slower than the load keeps up at first: learnt so, then found slower, its windows open sooner and
    # coarser, and no window at the poll interval is promised (it was: 33 s into a 30 s test)
    slow = simulate(slow_store(60), seconds=30, after_stop=30, known_end=False)
    assert slow.windows.pace == "paced" and math.isinf(slow.probe.precise_window_at), slow.probe.precise_window_at


def forecasts(seen: list[tuple[float, float, int]]) -> tuple[float, list[float]]:
    """From ``(now, precise_at, windows opened)`` every step: when the first window opened (s) and every forecast
    made before it once one was (s into the test)."""
    opened = next(now for now, _, windows in seen if windows)
    return opened, [at for now, at, _ in seen if now < opened and not math.isinf(at)]


def test_with_a_known_end_the_forecast_counts_what_accrues_until_it_and_then_says_when_the_window_opened():
    """Issue 25 (D2): 2 s flush, 100 calls/s. The forecast counted what accrues over a window's sampling only,
    never what accrues until the test's known end, as the window's decision does: 28.9 to 29.7 s in 30 s runs whose
    window opened 25.5 s in, and once it opened it forecast the next one, 49 to 54 s (the figure stayed there after
    the stop). --processes 2 in 35 s: each worker said 52.5 to 54.2 s for the test's first 30 s, their windows came
    ~30.5 s in, then 84 to 88 s. Now every forecast is within a flush cycle and its random start (and a recheck's
    queries) of the window, 25.5 s / 26.9 to 30.5 s, and afterwards the figure is when it opened."""
    # the window's random start within the 2 s cycle, and the share a recheck's polls spend: measured up to 2.1 s
    margin = 2.0 + 2.0
    for seconds in (30, 35):
        for seed in range(2):
            seen: list[tuple[float, float, int]] = []
            timer = flush_timer(2.0, phase=random.Random(100 + seed).uniform(0, 2), seed=seed)
            run = simulate(timer, seconds, seed=seed, watch=lambda now, w, seen=seen: seen.append(
                (now, w.precise_at, w.windows)))  # fmt: skip
            opened, said = forecasts(seen)
            assert said and all(abs(at - opened) <= margin for at in said), (seconds, seed, opened, said)
            assert run.probe.precise_window_at == pytest.approx(opened, abs=0.02), (seconds, opened)
            assert min(run.acked) >= opened - 1e-9 and max(run.brackets) <= 0.25, (seconds, seed)
    # --processes 2 (each worker half the calls and the share): the master says the earliest of its workers' latest
    master = FreshnessProbe("run", 20, 0.1, share=lambda: 0.0)
    runs = {}
    for who, relay in (("w1", Relay(learns=True)), ("w2", Relay(learns=False, learnt=("fine", 2.0), at=5.6))):
        seen = []
        simulate(flush_timer(2.0, phase=0.7), 35, rate=50, share=0.5, relay=relay, seed=1,
                 watch=lambda now, w, seen=seen: seen.append((now, w.precise_at, w.windows)))  # fmt: skip
        runs[who] = seen
    first = min(forecasts(seen)[0] for seen in runs.values())
    for step, ((now, mine, _), (_, theirs, _)) in enumerate(zip(runs["w1"], runs["w2"], strict=True)):
        if step % 100:  # a report every second
            continue
        master.merge_report({"precise_window_at": None if math.isinf(mine) else mine}, "w1")
        master.merge_report({"precise_window_at": None if math.isinf(theirs) else theirs}, "w2")
        said = master.precise_window_at
        assert math.isinf(said) or abs(said - first) <= margin, (now, said, first)
    assert master.precise_window_at == pytest.approx(first, abs=0.02), (master.precise_window_at, first)


def history_rows(run: Simulated) -> list[tuple[int, int, float]]:
    """The run's history rows: (second into the test, samples, p50 s)."""
    rows = run.probe.take_intervals()
    return [(second - int(WALL), row["WriteLog"].count, row["WriteLog"].value_at(50) / 1e6)
            for second, row in rows.items()]  # fmt: skip


def test_the_history_over_time_is_the_visibility_of_the_logs_acknowledged_in_each_second(monkeypatch):
    """Issue 25 (D4): rows keyed by the second a sample was found (the epoch clock here follows the simulated one).
    A 2 s flush in 30 s: each window's first flush found only the logs acknowledged just before it, p50 250 to 930
    ms, the next the rest, 1,268 to 1,885 ms, one row per flush, the last after the window's acknowledgements; at
    --store-rate 60 of 100 calls/s the rows ran to 50 s into a 30 s test, each p50 that of logs acknowledged
    ~20 s before (20,758 ms at 50 s, where the backlog's truth is ~33 s). Now each row is the second its samples were
    acknowledged in, within the test, and a backlog's row is its truth: 0.67 s per second of acknowledgement."""
    clock = [0.0]
    monkeypatch.setattr("grpc_user.locust.freshness.probe.time.time", lambda: WALL + clock[0])
    watch = lambda now, windows: clock.__setitem__(0, now)  # noqa: E731
    for seed in range(3):
        timer = flush_timer(2.0, phase=random.Random(100 + seed).uniform(0, 2), seed=seed)
        run = simulate(timer, 30, seed=seed, watch=watch)
        rows = history_rows(run)
        acked = range(int(min(run.acked)), int(max(run.acked)) + 1)
        assert [second for second, _, _ in rows] == list(acked), (seed, rows, min(run.acked), max(run.acked))
        assert sum(count for _, count, _ in rows) == len(run.found) and all(p50 <= 2.15 for _, _, p50 in rows), rows
    run = simulate(slow_store(60), seconds=30, after_stop=30, watch=watch)
    rows = history_rows(run)
    assert len(rows) >= 6 and rows[-1][0] < 30 and rows[-1][2] >= rows[0][2] + 10, rows
    for second, _, p50 in rows:  # a log acknowledged at t is stored at t x 100 / 60: visible 0.67 t later
        truth = (second + 0.5) * (100 / 60 - 1)
        assert abs(p50 - truth) <= 0.1 * truth + 0.5, (second, p50, truth, rows)


def test_the_web_ui_s_strip_says_when_the_first_figure_is_expected_while_none_is_counted():
    """Before, the strip was empty until a sample was counted (~31 s into a test at 100 calls/s)."""
    probe = FreshnessProbe("run", 20, 0.1)
    learning = strip_sentence(figures(probe, 20, with_histograms=False))
    assert learning == ("Freshness: no figure yet: the probe learns the call rate and the store's pace and flush cycle "
                        "first, from samples held back (not counted)"), learning  # fmt: skip
    probe.precise_window_at, probe.flush_cycle = 30.44, 1.998
    waiting = strip_sentence(figures(probe, 20, with_histograms=False))
    assert waiting == (
        "Freshness: no figure yet: the first sampling window at the poll interval (100 ms) is expected "
        "about 30 s into the test, when --freshness-query-share 1.5% of the calls has paid for its polls "
        "(the store keeps up, its flush cycle, 1,998 ms, learnt from samples held back, not counted)"
    )


# Against the reference server through real Locust, at the probe's defaults.


def history_p50s(run) -> list[float]:
    with open(f"{run.prefix}_freshness_history.csv", newline="") as handle:
        return [float(row["50%"]) for row in csv.DictReader(handle) if row["Name"] == "WriteLog"]


def share_of_calls(run, data) -> float:
    return data["probe_queries"] / run.requests()


# A poll starts a window gap after the last one started, or when the last one returned if that took longer: on a
# loaded machine (three of these runs at once, load 7 on 2 cores) a query took up to ~150 ms more (a gap of 254 ms).
SLACK_MS = 200


class Observer:
    """The truth for a run's samples: a thread that asks the server for every sample of probe ``run_id`` every
    ``every`` s over its own channel, and notes when each was first returned (epoch s) and its log's timestamp."""

    def __init__(self, target: str, run_id: str, every: float = 0.02) -> None:
        self.first_seen: dict[int, tuple[float, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(target, run_id, every), daemon=True)
        self._thread.start()

    def _watch(self, target: str, run_id: str, every: float) -> None:
        request = pb.QueryLogRequest(metadata_filters={PROBE_KEY: run_id}, limit=100_000).SerializeToString()
        with grpc.insecure_channel(target) as channel:
            query = channel.unary_unary(METHOD_PATHS[QUERY_LOG])
            while not self._stop.is_set():
                asked = time.time()
                try:
                    answer = pb.QueryLogResponse.FromString(query(request, timeout=5))
                except grpc.RpcError:
                    answer = pb.QueryLogResponse()
                for entry in answer.logs:
                    number = int(entry.metadata[SAMPLE_KEY])
                    if number not in self.first_seen:
                        self.first_seen[number] = (asked, dt.datetime.fromisoformat(entry.timestamp).timestamp())
                self._stop.wait(every)

    def stop(self, last: int | None = None) -> list[float]:
        """Stop; each sample's visibility (ms) from its log's timestamp to the first query that returned it, of the
        ``last`` highest-numbered samples (all when None: the learning's samples, held back, come first)."""
        self._stop.set()
        self._thread.join(10)
        numbers = sorted(self.first_seen)[-last:] if last else sorted(self.first_seen)
        return sorted((self.first_seen[n][0] - self.first_seen[n][1]) * 1000 for n in numbers)


@pytest.mark.slow  # real time: a real Locust run
def test_a_ten_second_light_run_gets_a_figure_of_a_two_second_flush_spread_over_it_within_its_stated_bound(
    serve, tmp_path
):
    """Before, a light run shorter than ~25 s got no sample at all (`sampled 0 of 242 asked`): the share saved up for
    a window funded at the poll interval, ~40 queries at 1.5% of 100 calls/s. Now the test's last window that fits
    opens at the gap the share pays for, its bound stated, within the share."""
    server = serve("--flush-period", "2", "--flush-batch", "100000")
    run = run_locust("single", grpc_host(server), tmp_path, "--target-rps", "100", "--audit-settle", "3",
                     run_time="10s", timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    data = run.json("freshness")
    row = data["aggregated"]
    # Fewer than asked: the share's doing, or the learning's when it ran on until the one window that fits (learnt
    # 7.5 s in, 108 samples held back, its window opened at once: 'limited' would be false words)
    assert row["visible"] == row["samples"] >= 15, data
    assert data["sampling_limited"] or data["precise_window_at_s"] >= 7, data
    gap = data["max_poll_gap_ms"]
    # A window coarser than the poll interval, as the share pays: ~0.4 s (~10 polls over its 4 s), 0.67 s with both
    # cores busy and two of these runs at once (fewer calls, fewer polls).
    assert 100 < gap <= 1000, gap
    # Visibility spread evenly over 0..2 s, each figure late by at most the stated bound.
    assert 800 <= row["p50"] <= 1200 + gap and 1700 <= row["p95"] <= 2100 + gap, (row, gap)
    assert share_of_calls(run, data) < 0.02, (data["probe_queries"], run.requests())
    assert f"late by at most {gap:,.0f} ms" in run.stderr
    limited = "limited by --freshness-query-share 1.5%"
    cause = limited if data["sampling_limited"] else "fell due while the probe did not"
    assert f"sampled {row['samples']:,} of {data['asked']:,} asked: " in run.stderr and cause in run.stderr


@pytest.mark.slow  # real time: a real Locust run
def test_a_light_load_that_keeps_up_is_measured_in_a_window_at_the_poll_interval_its_learning_samples_not_counted(
    serve, tmp_path
):
    """200 calls/s, a 2 s flush, 14 s: before, the first window opened at 0.4 s to learn the store's pace and
    counted (the bound ~400 ms); now single learning samples, never counted, find the store keeps up and the window
    waits until the calls until the test's end pay for polls every 100 ms (or the last that fits, nearly as fine)."""
    server = serve("--flush-period", "2", "--flush-batch", "100000")
    run = run_locust("single", grpc_host(server), tmp_path, "--target-rps", "200", "--audit-settle", "3",
                     run_time="14s", timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    data = run.json("freshness")
    row, gap = data["aggregated"], data["max_poll_gap_ms"]
    assert row["visible"] == row["samples"] >= 15 and data["held_back"] >= 1 and data["never_visible"] == 0, data
    # ~100 ms, and a poll late on a loaded machine by what the poller measured (a fresh-clone CI run beside other
    # runs: 310 ms); 400 before
    assert gap <= 300 or gap <= 100 + data["poll_lateness_ms"] + SLACK_MS, (gap, data["poll_lateness_ms"])
    assert 700 <= row["p50"] <= 1300 + gap and row["max"] <= 2000 + 60 + gap, (row, gap)
    assert share_of_calls(run, data) < 0.02, (data["probe_queries"], run.requests())
    assert f"late by at most {gap:,.0f} ms" in run.stderr
    assert f"(and {data['held_back']:,} taken to learn the store's pace or in a coarser window, not counted)" \
        in run.stderr  # fmt: skip


@pytest.mark.slow  # real time: a real Locust run
def test_at_the_defaults_a_fifth_of_a_second_flush_is_visible_within_a_fifth_of_a_second_and_the_bound(serve, tmp_path):
    server = serve("--flush-period", "0.2", "--flush-batch", "100000")
    run = run_locust("single", grpc_host(server), tmp_path, "--target-rps", "100", run_time="10s", timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    data = run.json("freshness")
    row = data["aggregated"]
    assert row["visible"] == row["samples"] >= 15 and data["max_poll_gap_ms"] <= 1000, data
    # A flush every 200 ms, then the bracket.
    assert row["max"] <= 200 + data["max_poll_gap_ms"] + 60, (row, data["max_poll_gap_ms"])
    assert share_of_calls(run, data) < 0.02, (data["probe_queries"], run.requests())


@pytest.mark.slow  # real time: a real Locust run
def test_at_the_defaults_a_light_load_on_a_store_slower_than_it_is_measured_within_a_seventh_of_the_truth(
    serve, tmp_path
):
    """100 calls/s against a store of 75 logs/s: visibility grows through the run. Before, a window's budget was spent
    in its first seconds, before any sample could be visible; its samples were found only by the last sweep, ~2x
    the truth (p50 9,339 ms against 4,617 at --store-rate 60 in 30 s), and a 12 s run took no sample. Now its polls
    are paced by the youngest pending sample's age, each bracket about a tenth of it: the p50 is within 15% (plus the
    stated bound) of the truth an observer polling every 20 ms saw for the same samples, within the share, the polls
    after the stop included."""
    server = serve("--store-rate", "75", "--flush-batch", "10", "--queue-size", "1000000")
    observer = Observer(server.target, "slow")
    try:
        run = run_locust("single", grpc_host(server), tmp_path, "--target-rps", "100", "--run-id", "slow",
                         "--audit-timeout", "30", "--audit-settle", "3", run_time="12s", timeout=150)  # fmt: skip
    finally:
        seen = observer.stop()
    assert run.returncode == 0, run.stderr[-2000:]
    data = run.json("freshness")
    row = data["aggregated"]
    # The observer also saw the learning samples (held back: never counted), taken before the windows' ones
    assert row["visible"] == row["samples"] == len(seen) - data["held_back"] >= 15, (data, len(seen))
    assert data["never_visible"] == 0, data
    truth = observer.stop(last=row["samples"])
    true_p50, gap = statistics.median(truth), data["max_poll_gap_ms"]
    assert abs(row["p50"] - true_p50) <= 0.15 * true_p50 + gap, (row, true_p50, gap)
    p50s = history_p50s(run)
    assert len(p50s) >= 2 and p50s[-1] > p50s[0], p50s  # visibility grows through the run
    assert data["probe_queries"] <= 0.015 * run.requests() + 1, (data["probe_queries"], run.requests())
    assert f"late by at most {gap:,.0f} ms" in run.stderr


@pytest.mark.slow  # real time: a real Locust run
def test_at_the_defaults_a_store_slower_than_the_load_shows_visibility_growing_within_the_share(serve, tmp_path):
    """Users at 900 calls/s, the store at 400 logs/s: the backlog, and with it visibility, grows through the run; the
    samples pending at the stop are looked for within the share, the last sweep included. (Unpaced, a fast machine
    made 4,576 calls/s: 36,749 logs the store needed 90 s for, past --audit-timeout, and a 68 s test.)"""
    server = serve("--store-rate", "400", "--flush-batch", "10", "--queue-size", "1000000")
    run = run_locust("single", grpc_host(server), tmp_path, "--target-rps", "900", "--audit-timeout", "60",
                     "--audit-settle", "3", users=10, run_time="8s", timeout=150)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    data = run.json("freshness")
    p50s = history_p50s(run)
    # The backlog grows by the calls/s the store does not take, visibility with it: (calls/s - 400) / 400 s a second
    # of acknowledgement, over the seconds the rows span. A loaded machine calls less (2.6 s over the run at 900
    # calls/s on a quiet machine; ~450 calls/s with both cores busy, where the store keeps up within 2 s and one
    # window at the poll interval samples for 2 s: its samples found over 3 seconds, [801, 990, 1,057] ms).
    # Beside two busy loops ~480 calls/s grew it by ~400 ms over the rows, within the windows' own spread
    # ([670, 610, 758] ms): the growth is checked where it stands out of that spread, from 1 s on. The rows are the
    # seconds of acknowledgement (a window sampling 2 s spans 2 or 3 of them: [1,539, 1,706] ms at ~450 calls/s).
    growth_ms = (run.requests() / 8 - 400) / 400 * (len(p50s) - 1) * 1000
    assert len(p50s) >= 2 and (growth_ms < 1000 or p50s[-1] >= p50s[0] + min(1000, growth_ms / 2)), (p50s, growth_ms)
    # Every sample settled: visible, or unknown with the reason (a busy test machine: 64 of 144 samples were
    # unknown in a full test run beside other runs, the share spent on the polls after the stop), never lost
    assert data["never_visible"] == 0 and data["visible"] >= 20, data  # 35 in a CI run beside other runs
    assert data["visible"] + data["unknown"] == data["samples"] and (not data["unknown"] or data["unknown_because"])
    assert share_of_calls(run, data) < 0.02, (data["probe_queries"], run.requests())


@pytest.mark.slow  # real time: a real Locust run and the audit's barriers
def test_at_the_defaults_lost_logs_samples_are_named_never_visible_within_the_share(serve, tmp_path):
    server = serve("--drop-rate", "0.5", "--seed", "3")
    # 100 calls/s for 10 s, not 10 unpaced users for 5 s: on a busy CI machine those made so few calls that the share
    # paid for no window (0 samples of 101 asked), which is the 10 s light run's case, not this test's.
    run = run_locust("single", grpc_host(server), tmp_path, "--target-rps", "100", "--audit-timeout", "20",
                     "--audit-settle", "2", users=10, run_time="10s", timeout=150)  # fmt: skip
    assert run.returncode == 3, run.stderr[-3000:]  # the audit's verdict: lost
    data = run.json("freshness")
    # Every sample settled, the lost ones named; a busy machine's slower calls may leave few samples in windows (2,
    # both lost, in a CI run), so whether some are visible is test_freshness.py's lost-logs test (all the time).
    assert data["samples"] == data["visible"] + data["never_visible"] > 0 and not data["unknown"], data
    assert len(data["never_visible_samples"]) == min(data["never_visible"], 20), data
    assert all(sample["name"] == "WriteLog" for sample in data["never_visible_samples"]), data
    assert share_of_calls(run, data) < 0.02, (data["probe_queries"], run.requests())


@pytest.mark.slow  # real time: a real Locust run
def test_at_the_defaults_unpaced_users_are_sampled_at_the_full_rate_each_within_a_poll_interval_when_fast_enough(
    serve, tmp_path
):
    server = serve("--flush-period", "0.5", "--flush-batch", "100000")
    run = run_locust("single", grpc_host(server), tmp_path, users=10, run_time="6s", timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    data = run.json("freshness")
    calls_per_second = run.requests() / 6
    assert data["visible"] == data["samples"] > 0, data
    assert share_of_calls(run, data) < 0.02, (data["probe_queries"], run.requests())
    # The share pays for every poll, with a margin, from ~830 calls/s; a busy machine calls less, and samples in
    # windows a gap of up to a tenth of the longest visibility apart (0.31 s at ~300 calls/s, load 8.5 on 2 cores).
    if calls_per_second >= 900:
        # At the full rate (20 a second) from when the share paid for every poll: from ~1 s into the test, or, on a
        # busy machine whose first seconds called less (962 calls/s over the run, load ~5 on 2 cores), from 3.5 s on
        # (50 samples in the 2.6 s after it, 25 taken before to learn the store's pace, held back)
        span = data["acked_to_s"] - data["acked_from_s"]
        assert not data["sampling_limited"] and span >= 2 and data["samples"] >= 0.8 * 20 * span, (
            calls_per_second,
            data,
            data["held_back"],
        )
        assert data["max_poll_gap_ms"] <= 100 + SLACK_MS, data
    else:
        assert data["max_poll_gap_ms"] <= 400 + SLACK_MS, (calls_per_second, data)


def test_a_learning_the_stop_cuts_short_keeps_its_samples_counted_when_no_window_counted_any():
    """Issue 25: a 30 s flush in a 5 s run. The stop came while the probe learnt the store's pace, and its samples
    were dropped: '0 of 0 samples visible ... (and 61 taken to learn the store's pace ..., not counted)'. Now they are
    held to the end and counted, as no window counted any: found ones with their bracket, the rest pending
    to the end."""
    run = simulate(flush_timer(30.0, phase=29.0), seconds=5, after_stop=30)
    probe = run.probe
    assert run.windows.windows == 0 and probe.held_back == 0, probe.held_back
    assert probe.counted() >= 40 and probe.counted() == len(run.found) + len(probe.pending), probe.counted()
    assert probe.queries <= SHARE * run.calls + 1
    # The share was spent before the flush (this simulation has no last sweep): unknown, with the reason given
    probe.finish("--freshness-query-share 1.5% of the calls was spent")
    data = figures(probe, 20)
    assert data["samples"] == data["unknown"] == probe.counted() and data["held_back"] == 0
    assert "share 1.5% of the calls was spent" in summary_line(data)


def test_the_share_is_said_to_limit_the_samples_only_while_it_kept_the_probe_from_sampling():
    """Issue 25: ``sampling_limited`` was set once the probe went 2 s without sampling, whatever kept it from it: a
    service that acknowledges no call (nothing to sample) was said 'limited by --freshness-query-share' with its
    advice to raise it. A 2 s flush at 100 calls/s in 20 s: the share keeps the probe from sampling between its
    learning and its window; a service that stops right after the learning keeps it so instead."""
    fine = simulate(flush_timer(2.0, 0.3), 20.0, after_stop=5.0)
    assert fine.windows.limited and fine.windows.withheld > 5.0, fine.windows.withheld
    failed = simulate(flush_timer(2.0, 0.3), 20.0, after_stop=5.0, failing_from=6.0)  # learnt 5.5 s in
    assert failed.probe.failing_since is not None
    assert not failed.windows.limited and failed.windows.withheld <= 1.0, failed.windows.withheld
