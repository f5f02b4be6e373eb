"""Freshness: visibility latency (acknowledgement to the first QueryLog that returns a log), measured by the probe.

Accuracy against the reference server, whose flusher stores on a timer (``--flush-period``) or slowly
(``--store-rate``): real servers in subprocesses, real headless Locust, a few seconds of load each. Tolerances
are stated at each assertion and use the run's own largest gap between two polls (both cores may be busy).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import signal
import time

import grpc
import pytest
from conftest import grpc_host
from locust_runs import PACED, distributed_args, run_locust
from prometheus_client.parser import text_string_to_metric_families
from test_reports import in_process
from test_signals import Locust
from web_runs import http, web_ui_process

from grpc_user.calls import METHOD_PATHS, WRITE_LOG, write_request
from grpc_user.histograms import Latencies
from grpc_user.locust.freshness.files import figures
from grpc_user.locust.freshness.poller import poll_once
from grpc_user.locust.freshness.probe import PROBE_KEY, SAMPLE_KEY, WORKER_KEY, FreshnessProbe
from grpc_user.pb import log_service_pb2 as pb
from reference_server.process import start_server_process

pytestmark = pytest.mark.slow

LIGHT_LOAD = ("--target-rps", "100")
# The accuracy tests sample all the time at 100 calls/s: a poll every 100 ms while a sample is pending is 10% of the
# calls (the default, 1.5%, samples in windows: tests/test_freshness_windows.py). At 20% a busy machine's slower
# calls (below ~63 calls/s) fell back to windows, 6 samples where 30 are needed: 50% keeps it down to ~25 calls/s.
PRECISE = ("--freshness-query-share", "50")


def freshness(run) -> dict:
    return run.json("freshness")


def history(run) -> list[dict[str, str]]:
    with open(f"{run.prefix}_freshness_history.csv", newline="") as handle:
        return list(csv.DictReader(handle))


# The probe on its own.


def test_a_sampled_request_is_sent_tagged_and_left_as_it_was():
    probe = FreshnessProbe("run", rate=20, poll_interval=0.1, worker="w1")
    request = write_request("hello", run_id="r")
    before = request.SerializeToString()
    sample = probe.tag(WRITE_LOG, "WriteLog", request, now=time.monotonic())
    tagged = pb.WriteLogRequest.FromString(request.SerializeToString()).log_entry.metadata
    probe.untag(sample)
    assert (tagged[PROBE_KEY], tagged[WORKER_KEY], tagged[SAMPLE_KEY]) == ("run", "w1", "0")
    assert request.SerializeToString() == before


def test_a_sample_taken_while_users_spawn_does_not_hold_up_the_next_ones():
    users = [1]
    probe = FreshnessProbe("t", rate=20, poll_interval=0.1, share=lambda: users[0] / 300)
    start = time.monotonic()
    assert probe.tag(WRITE_LOG, "WriteLog", write_request("x"), start) is not None  # 1 of 300 users: 1 per 15 s
    users[0] = 300
    probe.refresh_due()  # the poller does this every poll
    assert probe.due <= start + 0.05 + 1e-9


def test_samples_follow_the_rate_share_of_this_process():
    probe = FreshnessProbe("t", rate=20, poll_interval=0.1, share=lambda: 0.5)  # 10 per second here
    taken, start = 0, time.monotonic()
    for step in range(1000):  # 10 s of calls, one every 10 ms
        now = start + step * 0.01
        if now >= probe.due and probe.tag(WRITE_LOG, "WriteLog", write_request("x"), now) is not None:
            taken += 1
    assert 95 <= taken <= 105


def test_one_query_finds_every_pending_sample_the_service_stored(serve):
    server = serve("--flush-period", "0.05")
    probe = FreshnessProbe("probe-test", rate=1000, poll_interval=0.1)
    with grpc.insecure_channel(server.target) as channel:
        call = lambda path, payload: channel.unary_unary(path)(payload, timeout=5)  # noqa: E731
        for index in range(30):
            request = write_request(f"log {index}", run_id="r")
            sample = probe.tag(WRITE_LOG, "WriteLog", request, now=time.monotonic())
            payload = request.SerializeToString()
            probe.untag(sample)
            call(METHOD_PATHS[WRITE_LOG], payload)
            probe.acked(sample, time.monotonic())
        found, polls = 0, 0
        while probe.pending and polls < 50:
            found += poll_once(probe, call)
            polls += 1
            time.sleep(0.02)
    assert found == 30 and probe.queries == polls
    assert probe.histograms.combined().count == 30


def acked_samples(probe: FreshnessProbe, moments: list[float]) -> None:
    """Samples acknowledged at these monotonic moments (their logs timestamped one ms before)."""
    wall = time.time() - time.monotonic()
    for moment in moments:
        request = write_request("x", run_id="r")
        request.log_entry.timestamp = dt.datetime.fromtimestamp(wall + moment - 0.001, dt.UTC).isoformat()
        probe.due = 0.0
        sample = probe.tag(WRITE_LOG, "WriteLog", request, moment)
        probe.untag(sample)
        probe.acked(sample, moment)


def window(look) -> tuple[float, float]:
    request = pb.QueryLogRequest.FromString(look.payload)
    return (dt.datetime.fromisoformat(request.start_time).timestamp(),
            dt.datetime.fromisoformat(request.end_time).timestamp())  # fmt: skip


def test_a_poll_looks_for_the_recent_samples_and_for_an_overdue_one_only_when_its_turn_comes():
    # 1,000 samples over 30 s that the service never stores: every poll would look for all of them, back to the
    # first one's timestamp. A sample older than 15 s (and three times the longest visibility found) is overdue:
    # looked for again a tenth of its age after the last look.
    now, wall = time.monotonic(), time.time()
    probe = FreshnessProbe("r", rate=20, poll_interval=0.1)
    acked_samples(probe, [now - 30 + index * 0.03 for index in range(1000)])
    first = probe.look(now)
    assert len(first.current) + len(first.overdue) == 1000, "never looked for: all of them once"
    probe.asking()
    probe.observe(first, pb.QueryLogResponse(success=True).SerializeToString(), now)
    second = probe.look(now + 0.1)
    assert len(second.current) == 496 and second.overdue == []  # acked within the last 15 s
    assert window(second)[0] >= wall + 0.1 - 15 - 0.01
    turn = probe.look(now + 0.1 + 0.1 * 15.2)  # a tenth of the age of those that went overdue 15.1 s after their ack
    assert 0 < len(turn.overdue) <= 504
    assert len(probe.pending) == 1000


def test_the_error_bound_is_the_largest_gap_between_the_last_look_without_a_sample_and_the_look_that_found_it(serve):
    server = serve("--flush-period", "0.4", "--flush-batch", "100000")
    probe = FreshnessProbe("bound", rate=1000, poll_interval=0.01)
    with grpc.insecure_channel(server.target) as channel:
        call = lambda path, payload: channel.unary_unary(path)(payload, timeout=5)  # noqa: E731
        request = write_request("log", run_id="r")
        sample = probe.tag(WRITE_LOG, "WriteLog", request, now=time.monotonic())
        payload = request.SerializeToString()
        probe.untag(sample)
        call(METHOD_PATHS[WRITE_LOG], payload)
        probe.acked(sample, time.monotonic())
        looks = []
        while len(probe.pending):
            looks.append(time.monotonic())
            poll_once(probe, call)
            time.sleep(0.05 if len(looks) % 2 else 0.15)  # gaps of 50 and 150 ms: the bound is the one before the find
    assert len(looks) >= 3 and probe.histograms.combined().count == 1
    assert probe.max_poll_gap == pytest.approx(looks[-1] - looks[-2], abs=0.01)  # not the first gap, not the figure


def test_histograms_sent_by_workers_add_up_exactly_on_the_master():
    worker_a, worker_b, master = (FreshnessProbe(t, 20, 0.1) for t in ("a", "b", ""))
    for value in range(1, 500):
        worker_a.record("WriteLog", value * 1.5, time.time())
        worker_b.record("WriteLog", value * 3.0, time.time())
    expected = Latencies()
    expected.add(worker_a.histograms.combined())
    expected.add(worker_b.histograms.combined())
    master.merge_report(worker_a.take_report(), "a")
    master.merge_report(worker_b.take_report(), "b")
    merged = master.histograms.combined(name="WriteLog")
    assert merged.summary() == expected.summary() and merged.count == 998
    assert (merged.low(), merged.high()) == (1500, 1497000)  # the exact smallest and largest, in µs


def test_the_part_of_the_run_the_figures_cover_spans_every_worker_s_counted_samples_on_the_master():
    """The first and last acknowledgement of a counted sample found (epoch s) reach the master from each worker:
    the figures' coverage (``acked_from_s``..``acked_to_s``) is over all of them, whatever the reports' order."""
    worker_a, worker_b, master = (FreshnessProbe("run", 20, 0.1, worker=w) for w in ("w1", "w2", ""))
    worker_a.acked_first, worker_a.acked_last = 1_000_003.0, 1_000_012.0
    worker_b.acked_first, worker_b.acked_last = 1_000_002.0, 1_000_027.5
    master.merge_report(worker_b.take_report(), "w2")
    master.merge_report(worker_a.take_report(), "w1")
    master.merge_report(FreshnessProbe("run", 20, 0.1, worker="w3").take_report(), "w3")  # found nothing yet
    master.record("WriteLog", 900.0, time.time())
    data = figures(master, 20, "done", test_span=(1_000_000.0, 1_000_030.0))
    assert (data["acked_from_s"], data["acked_to_s"], data["test_s"]) == (2.0, 27.5, 30.0), data


# Accuracy against the reference server, through real Locust.


def test_with_a_two_second_flush_visibility_spreads_evenly_over_two_seconds(serve, tmp_path):
    server = serve("--flush-period", "2", "--flush-batch", "100000")
    run = run_locust("single", grpc_host(server), tmp_path, *LIGHT_LOAD, *PRECISE, "--audit-settle", "3", run_time="5s")
    assert run.returncode == 0, run.stderr[-2000:]
    data = freshness(run)
    row = data["by_name"]["WriteLog"]
    gap = data["max_poll_gap_ms"]
    assert data["poll_interval_ms"] == 100 and row["never_visible"] == 0
    assert row["visible"] == row["samples"] >= 50  # 20 samples/s over ~5 s
    # A log acknowledged at a uniform moment waits for the next tick of a 2 s timer: uniform over 0..2 s.
    assert 700 <= row["p50"] <= 1300
    assert 1600 <= row["p95"] <= 2000 + gap
    assert 1700 <= row["max"] <= 2000 + gap + 150
    assert "Visibility latency per RPC" in run.stderr and f"late by at most {gap:,.0f} ms" in run.stderr


def test_with_a_fifth_of_a_second_flush_every_sample_is_visible_within_a_third_of_a_second(serve, tmp_path):
    server = serve("--flush-period", "0.2", "--flush-batch", "100000")
    run = run_locust("single", grpc_host(server), tmp_path, *LIGHT_LOAD, *PRECISE, run_time="3s")
    assert run.returncode == 0, run.stderr[-2000:]
    data = freshness(run)
    row = data["aggregated"]
    assert row["visible"] == row["samples"] >= 30 and data["never_visible"] == 0
    assert row["max"] <= 200 + max(data["max_poll_gap_ms"], 100) + 100, data  # ~0.3 s on a quiet machine


def test_with_a_slow_store_visibility_grows_through_the_run(serve, tmp_path):
    # 100 logs/s offered, 25 stored per second: a log acknowledged t s into the run is stored ~4 t s in (~2 t s when
    # a loaded machine lets the generator make only half its calls: at 40 stored per second, load 8 on 2 cores left
    # the last log visible 2.7 s after its acknowledgement).
    server = serve("--store-rate", "25", "--flush-batch", "10")
    run = run_locust("single", grpc_host(server), tmp_path, *LIGHT_LOAD, *PRECISE, "--audit-timeout", "30",
                     "--audit-settle", "3", run_time="4s")  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    data = freshness(run)
    assert data["never_visible"] == 0 and data["aggregated"]["max"] >= 3000
    rows = history(run)
    p50s = [float(row["50%"]) for row in rows]
    assert len(rows) >= 4
    assert p50s[-1] >= p50s[0] + 2000, p50s  # the chart over time shows the backlog
    assert p50s[len(p50s) // 2] > p50s[0], p50s


def test_samples_never_stored_are_counted_and_named(serve, tmp_path):
    # Half the logs dropped, by a seeded draw per log: with exactly 150 logs the 151st draw, the audit's barrier's,
    # keeps it (0.70 >= 0.5), so the audit proves the rest lost and their samples never visible.
    server = serve("--drop-rate", "0.5", "--seed", "3")
    run = run_locust("single", grpc_host(server), tmp_path, *LIGHT_LOAD, *PRECISE, "--max-requests", "150",
                     "--audit-timeout", "10", "--audit-settle", "1", run_time="10s")  # fmt: skip
    assert run.returncode == 3, run.stderr[-3000:]  # the audit's verdict: lost
    data = freshness(run)
    assert data["never_visible"] + data["visible"] == data["samples"] >= 10 and data["never_visible"] > 0, data
    named = data["never_visible_samples"][0]
    assert named["name"] == "WriteLog" and named["probe"] == run.json("run")["run_id"]
    assert "never visible" in run.stderr


def test_the_probe_s_queries_stay_out_of_the_request_stats(serve, tmp_path):
    server = serve()
    run = run_locust("batch", grpc_host(server), tmp_path, "--batch-size", "10", *PACED, *PRECISE, users=2,
                     run_time="2s")  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert set(run.stats()) == {"BatchWriteLog", "Aggregated"}
    data = freshness(run)
    assert data["probe_queries"] > 0 and data["by_name"]["BatchWriteLog"]["visible"] > 0
    assert "freshness probe:" in run.stderr


def test_samples_pending_when_the_audit_is_interrupted_are_unknown_not_never_visible(serve, tmp_path):
    server = serve("--drop-rate", "1")  # nothing is stored: every sample stays pending
    locust = Locust(tmp_path, grpc_host(server), "--target-rps", "100", *PRECISE, "--audit-timeout", "60",
                    "--audit-settle", "30", run_time="2s")  # fmt: skip
    locust.wait_for("Delivery audit: waiting")
    time.sleep(0.5)
    locust.signal(signal.SIGINT)
    run = locust.finish()
    data = freshness(run)
    assert data["unknown"] == data["samples"] >= 10 and data["never_visible"] == 0, data
    assert "cut short by SIGINT" in data["unknown_because"]
    assert data["unknown_samples"][0]["name"] == "WriteLog"
    assert "unknown (not looked for long enough: the audit was cut short by SIGINT)" in run.stderr
    assert {row["Name"]: row for row in run.rows("freshness")}["Aggregated"]["Unknown"] == str(data["samples"])


def test_samples_of_a_service_that_stores_nothing_are_never_visible_as_the_audit_says_not_unknown(serve, tmp_path):
    """Issue 25, D3: the audit said "the service stored nothing, not even the log the audit wrote after the stop",
    and the freshness line "160 unknown (not looked for long enough: the service was still storing when the audit
    gave up)". The samples are never visible, for the audit's reason."""
    server = serve("--drop-rate", "1")
    run = run_locust("single", grpc_host(server), tmp_path, *LIGHT_LOAD, "--audit-timeout", "4", "--audit-settle", "1",
                     run_time="4s")  # fmt: skip
    assert run.returncode == 4, run.stderr[-3000:]  # the audit: unsettled
    assert run.json("audit")["service_stored"] == 0
    data = freshness(run)
    assert data["never_visible"] == data["samples"] > 0 and data["unknown"] == 0, data
    assert data["never_visible_because"].startswith("the service stored nothing in the "), data
    line = next(line for line in run.stderr.splitlines() if line.startswith("Freshness ("))
    assert f"never visible by the end of the audit: {data['never_visible_because']}" in line, line
    assert "still storing" not in line and "unknown" not in line, line


def test_without_an_audit_a_service_that_stores_nothing_is_not_answered_with_a_larger_query_share(serve, tmp_path):
    """Issue 25, D3: with --no-audit, 0 of 160 samples ever visible, the line said to raise --freshness-query-share
    "to follow them"."""
    server = serve("--drop-rate", "1")
    run = run_locust("single", grpc_host(server), tmp_path, *LIGHT_LOAD, "--no-audit", "--audit-settle", "3",
                     run_time="10s")  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    data = freshness(run)
    assert data["unknown"] == data["samples"] > 0 and data["visible"] == 0, data
    assert "raise" not in data["unknown_because"], data["unknown_because"]


def test_without_an_audit_the_probe_stops_looking_once_nothing_became_visible_for_the_settle_time(serve, tmp_path):
    """The samples left are unknown, never "never visible": without the audit's barrier nothing proves the service
    will not store them later (82 samples of a 30 s flush were called never visible)."""
    server = serve("--drop-rate", "1")
    started = time.monotonic()
    run = run_locust("single", grpc_host(server), tmp_path, *LIGHT_LOAD, *PRECISE, "--no-audit", "--audit-timeout",
                     "300", "--audit-settle", "2", run_time="2s", timeout=100)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert time.monotonic() - started < 100  # not the 300 s of --audit-timeout
    data = freshness(run)
    assert data["unknown"] == data["samples"] >= 10 and data["never_visible"] == 0, data
    assert "without the audit (--no-audit) nothing proves they will not be stored later" in data["unknown_because"]


def test_without_an_audit_samples_the_spent_share_cannot_follow_are_unknown_for_that_reason_at_once(serve, tmp_path):
    """A store slower than the load, the share spent while its samples wait: no poll can look for them after the
    stop. A new user's run waited the settle time and blamed the service ("none became visible for --audit-settle
    6 s"), while every sample its own observer followed became visible in those seconds. A store of 5 logs/s: the
    probe keeps a reserve for following its samples after the stop, by the backlog it saw (at 20 logs/s it now
    follows them all), and before any was stored it sees only how long they have been pending."""
    server = serve("--store-rate", "5", "--flush-batch", "10")
    started = time.monotonic()
    run = run_locust("single", grpc_host(server), tmp_path, *LIGHT_LOAD, "--freshness-query-share", "15", "--no-audit",
                     "--audit-timeout", "300", "--audit-settle", "90", run_time="4s", timeout=150)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert time.monotonic() - started < 60  # not the 90 s of --audit-settle (alone ~20 s, beside a hog 36 s)
    data = freshness(run)
    assert data["unknown"] > 0 and data["never_visible"] == 0, data
    assert data["unknown_because"].startswith("--freshness-query-share 15% of the calls was spent"), data


def test_without_an_audit_a_dead_service_leaves_the_pending_samples_unknown_at_once(tmp_path):
    server = start_server_process("--flush-period", "1", "--flush-batch", "100000", "--queue-size", "100000")
    try:
        locust = Locust(tmp_path, grpc_host(server), "--no-audit", "--audit-timeout", "300", "--target-rps", "100",
                        *PRECISE, run_time="5s")  # fmt: skip
        locust.wait_for("All users spawned")
        time.sleep(2.5)  # samples found at the flushes; those acknowledged since the last one are never stored
    finally:
        server.kill()
    run = locust.finish()  # within 60 s, not the 300 s of --audit-timeout
    data = freshness(run)
    assert data["visible"] > 0 and data["unknown"] > 0 and data["never_visible"] == 0, data
    assert "QueryLog failed after the stop: UNAVAILABLE" in data["unknown_because"]
    assert "Traceback" not in run.stderr


def test_a_service_that_stops_while_no_call_is_sampled_is_named_as_why_no_sample_was_taken(tmp_path):
    """Issue 25: the service killed while the probe sampled no call (between its learning and its first window; here
    a share too small to pay for any) was not named: no sampled call failed, so the line blamed the test's stop or
    the probe's first seconds. One call a second is heard while none is sampled: the line names the service."""
    server = start_server_process("--flush-period", "0.5", "--flush-batch", "100000", "--queue-size", "100000")
    try:
        locust = Locust(tmp_path, grpc_host(server), "--no-audit", "--target-rps", "100", "--freshness-query-share",
                        "0.01", users=10, run_time="6s")  # fmt: skip
        locust.wait_for("All users spawned")
        time.sleep(2.0)
    finally:
        server.kill()
    run = locust.finish()
    data = freshness(run)
    assert data["samples"] == data["unacknowledged"] == 0 and data["failing_status"] == "UNAVAILABLE", data
    assert 0 < data["last_acked_s"] < data["failing_since_s"] < data["test_s"], data
    line = next(line for line in run.stderr.splitlines() if line.startswith("Freshness ("))
    assert (
        f"; sampled 0 of {data['asked']:,} asked: {data['asked_unsampled']:,} fell due while the probe did not sample: "
        "in its first seconds (it learns the call rate and the store's pace first) and while the service acknowledged "
        f"no call (none from {data['failing_since_s']:,.1f} s into the test to its end"
    ) in line or "limited by --freshness-query-share 0.01%, the service acknowledged no call (none from " in line, line
    assert "Traceback" not in run.stderr


def test_with_actions_each_phase_has_its_own_visibility_figures(serve, tmp_path):
    server = serve("--flush-period", "0.5", "--flush-batch", "100000")
    run = run_locust("single", grpc_host(server), tmp_path, *LIGHT_LOAD, *PRECISE, "--action", "2s:true",
                     run_time="4s")  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    data = freshness(run)
    phases = {row["phase"]: row for row in data["phases"]}
    assert set(phases) == {0, 1} and sum(row["samples"] for row in phases.values()) == data["samples"]
    for row in phases.values():  # a 0.5 s flush: visible within 0.5 s and the run's own poll gap
        assert row["visible"] == row["samples"] > 10 and row["p95"] <= 500 + data["max_poll_gap_ms"] + 100, row
    rows = {row["Name"]: row for row in run.rows("freshness")}
    assert float(rows["phase 1"]["95%"]) == phases[1]["p95"] and int(rows["phase 0"]["Samples"]) == phases[0]["samples"]
    assert set(rows) == {"WriteLog", "Aggregated", "phase 0", "phase 1"}
    report = in_process(tmp_path, "--json", "--no-charts")
    assert report.returncode == 0, report.stderr
    summary = json.loads(report.stdout)["freshness"]
    assert [row["phase"] for row in summary["phases"]] == [0, 1] and set(summary["by_name"]) == {
        "WriteLog",
        "Aggregated",
    }
    assert "Per phase of `--action`" in (tmp_path / "report.md").read_text()


def test_no_freshness_measures_nothing(serve, tmp_path):
    server = serve()
    run = run_locust("single", grpc_host(server), tmp_path, "--no-freshness", *PACED, users=2, run_time="2s")
    assert run.returncode == 0, run.stderr[-2000:]
    assert not (tmp_path / "single_freshness.json").exists()
    assert "Visibility latency" not in run.stderr


def test_workers_probe_their_own_samples_and_the_master_adds_them(serve, tmp_path):
    server = serve("--flush-period", "1", "--flush-batch", "100000")
    run = run_locust("single", grpc_host(server), tmp_path, *LIGHT_LOAD, "--freshness-query-share", "40",
                     "--audit-settle", "2", *distributed_args(2), users=4, run_time="4s", timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    data = freshness(run)
    row = data["aggregated"]
    # Both workers sampled (20/s in total, split by their users); the samples pending at the stop were handed
    # to the master, which found them during the audit.
    assert row["visible"] == row["samples"] >= 20 and data["never_visible"] == 0
    # Late by at most the largest gap between two polls of any process (hundreds of ms on a busy machine).
    assert 1000 - 150 <= row["max"] <= 1000 + data["max_poll_gap_ms"] + 500


def test_workers_at_the_defaults_learn_the_store_once_and_get_a_figure_the_master_adds_up(serve, tmp_path):
    """``--processes 2``, 12 s at 100 calls/s, the default share: at first no figure at all (`sampled 0 of 243
    asked`): Locust keeps -t on the master; the master now passes the end with its options. Then each worker learnt
    the store's pace on its own, ~5 of its ~9 queries: 2 to 12 samples, late by up to ~1.3 s. Now the first worker
    learns, the master relays what it learnt, and the other saves its whole share for a window (18 to 23 samples
    within ~0.6 s measured, once 963 ms on a busy machine); the learner's coarser last window is held back and
    settled at the master."""
    server = serve("--flush-period", "2", "--flush-batch", "100000")
    run = run_locust("single", grpc_host(server), tmp_path, *LIGHT_LOAD, "--audit-settle", "3", *distributed_args(2),
                     users=10, run_time="12s", timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    data = freshness(run)
    row = data["aggregated"]
    assert row["visible"] == row["samples"] >= 15 and data["never_visible"] == data["unknown"] == 0, data
    assert data["max_poll_gap_ms"] <= 1100, data["max_poll_gap_ms"]
    # The workers' reports add up at the master: the samples asked for at 20/s over ~12 s, the samples of each name,
    # and the queries within each process's share (1.5% of its calls plus one: three processes).
    assert 180 <= data["asked"] <= 255 and sum(r["samples"] for r in data["by_name"].values()) == row["samples"], data
    assert data["probe_queries"] <= 0.015 * run.requests() + 3, (data["probe_queries"], run.requests())
    assert 700 <= row["max"] <= 2000 + data["max_poll_gap_ms"] + 150, row


def test_the_report_shows_and_gates_freshness_and_the_json_and_history_carry_it(serve, tmp_path):
    server = serve("--flush-period", "0.5", "--flush-batch", "100000")
    folder = tmp_path / "runs" / "20261130T000000Z-single"
    folder.mkdir(parents=True)
    run = run_locust("single", grpc_host(server), folder, *LIGHT_LOAD, *PRECISE, run_time="2s")
    assert run.returncode == 0, run.stderr[-2000:]
    aggregated = {row["Name"]: row for row in run.rows("freshness")}["Aggregated"]
    breached = in_process(folder, "--max-visibility-p95-ms", "1", "--no-charts")
    assert breached.returncode == 1
    assert f"gate breached: visibility latency p95 {float(aggregated['95%']):,.10g} ms > --max-visibility-p95-ms 1" \
        in breached.stderr  # fmt: skip
    held = in_process(folder, "--max-visibility-p95-ms", "5000", "--json")
    assert held.returncode == 0, held.stderr
    summary = json.loads(held.stdout)["freshness"]
    assert summary["visibility_latency_ms"]["p95"] == float(aggregated["95%"])
    assert (summary["samples"], summary["poll_interval_ms"]) == (int(aggregated["Samples"]), 100.0)
    text = (folder / "report.md").read_text()
    assert "## Freshness (visibility latency)" in text and "the largest gap between the polls that saw a sample" in text
    assert (folder / "report_freshness.png").read_bytes()[:4] == b"\x89PNG"
    history = in_process("history", tmp_path / "runs")
    assert history.returncode == 0 and "visibility p95 ms" in history.stdout


def test_a_capacity_step_whose_logs_become_visible_too_late_is_bad_and_the_answer_says_freshness(serve, tmp_path):
    # Storage keeps up to 150 logs/s behind a queue that never fills: above that the backlog, and with it the
    # time until a log is visible, grows within a step. A 500 ms freshness SLO breaks first (the call latency SLO
    # is out of the way: on a busy machine a step's p95 may pass the default 1 s).
    server = serve("--store-rate", "150")
    run = run_locust("single", grpc_host(server), tmp_path, "--capacity-search", "--capacity-start", "40",
                     "--capacity-step", "3", "--capacity-precision", "0.3", "--slo-visibility-p95-ms", "500",
                     "--slo-p95-ms", "10000", *PRECISE, users=300, run_time="120s", timeout=150)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads((tmp_path / "capacity.json").read_text())
    assert result["breaking_cause"]["status"] == "FRESHNESS", result["breaking_cause"]
    assert "freshness: logs visible to QueryLog too late" in result["answer"] and result["answer"] in run.stderr
    assert 80 <= result["max_sustainable_rps"] <= 240, result["answer"]
    good = [step for step in result["steps"] if step["good"]]
    assert good and all(step["visibility_p95_ms"] <= 500 for step in good)
    assert result["slo"]["visibility_p95_ms"] == 500


def test_the_web_ui_shows_freshness_beside_the_audit_strip_and_metrics_carry_it(serve, tmp_path):
    server = serve("--flush-period", "0.3", "--flush-batch", "100000")
    with web_ui_process(tmp_path, grpc_host(server), "--audit-settle", "1", "--target-rps", "100", *PRECISE,
                        locustfile="locustfiles/single.py") as web:  # fmt: skip
        assert web.post("swarm", {"user_count": "4", "spawn_rate": "4"})["success"]
        during = web.wait_for("grpc-audit", lambda answer: answer.get("freshness", "").startswith(
            "Freshness: visible after p95"), timeout=15)  # fmt: skip
        assert "late by at most" in during["freshness"]
        assert 'id = "grpc-freshness"' in http(f"{web.url}/")
        assert web.post("stop", {})["success"]
        done = web.wait_for("grpc-audit", lambda answer: answer.get("status") not in ("", "pending", "running"))
        samples = {}
        for family in text_string_to_metric_families(http(f"{web.url}/metrics")):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        data = json.loads(open(f"{web.prefix}_freshness.json").read())
    prefix = "grpc_log_loadtest"
    assert data["visible"] > 0 and str(data["aggregated"]["samples"]) in done["freshness"].replace(",", "")
    assert samples[(f"{prefix}_visibility_latency_seconds_count", (("name", "WriteLog"),))] == data["visible"]
    p95 = samples[(f"{prefix}_visibility_latency_quantile_seconds", (("name", "WriteLog"), ("quantile", "0.95")))]
    assert p95 * 1000 == pytest.approx(data["by_name"]["WriteLog"]["p95"], abs=0.001)
    assert samples[(f"{prefix}_freshness_samples", ())] == data["samples"]
    assert samples[(f"{prefix}_freshness_poll_interval_seconds", ())] == 0.1
    assert samples[(f"{prefix}_freshness_probe_queries_total", ())] == data["probe_queries"]


def test_a_web_ui_test_without_a_run_time_says_when_its_first_figure_comes_and_marks_a_coarse_one_after_an_early_stop(
    serve, tmp_path
):
    """Issue 25: the /swarm form's run time left empty, 10 users at 100 calls/s, a 2 s flush. The strip and /metrics
    showed nothing until the first window at the poll interval (~31 s in), and a stop before it showed the learning's
    cycle, polled up to 1.5 s apart, as the figure: p50 2,419 ms against a truth of 1,000, unmarked. Now the strip
    and /metrics say when the share pays for that window, and the figure of a stop before it says it is coarse."""
    server = serve("--flush-period", "2", "--flush-batch", "100000")
    with web_ui_process(tmp_path, grpc_host(server), "--audit-settle", "1", "--target-rps", "100",
                        locustfile="locustfiles/single.py") as web:  # fmt: skip
        assert web.post("swarm", {"user_count": "10", "spawn_rate": "10"})["success"]
        first = web.wait_for("grpc-audit", lambda answer: answer.get("freshness", "").startswith(
            "Freshness: no figure"), timeout=10)["freshness"]  # fmt: skip
        during = web.wait_for("grpc-audit", lambda answer: "is expected about" in answer.get("freshness", ""),
                              timeout=20)["freshness"]  # fmt: skip
        said = float(re.search(r"expected about ([\d,]+) s into the test", during).group(1).replace(",", ""))
        metrics = http(f"{web.url}/metrics")
        assert web.post("stop", {})["success"]
        done = web.wait_for("grpc-audit", lambda answer: answer.get("status") not in ("", "pending", "running"))
        data = json.loads(open(f"{web.prefix}_freshness.json").read())
    # ~30 s at 100 calls/s (a busy machine calls less: later)
    assert 20 <= said <= 120 and "the probe learns the call rate" in first or first == during, (first, during)
    assert "grpc_log_loadtest_freshness_precise_window_at_seconds" in metrics, metrics
    assert data["held_released"] and abs(data["flush_cycle_ms"] - 2000) <= 100 and data["visible"] >= 10, data
    coarse = "a coarse figure: the test stopped before --freshness-query-share 1.5% paid for a sampling window at the "
    assert coarse in done["freshness"] and f"polled up to {data['max_poll_gap_ms']:,.0f} ms apart" in done["freshness"]
