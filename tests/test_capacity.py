"""--capacity-search finds a service's capacity by itself: against a reference server whose storage takes at
most N logs/s behind a bounded queue (a third of a second of N: an overload of 20% fills it early in a 3 s step,
while a late flush at 85% does not), the knee lands on N within the stated precision, for writes and batches.

N is the service's limit, not the machine's: 100 WriteLog/s and 500 logs/s in batches, which one Locust process and
the reference server reach many times over even with both cores busy (the batch search once found 2,378 logs/s for a
limit of 3,000 on a loaded CI machine, where the reference server stored no more than that; at load 10 on 2 cores one
Locust process could not dispatch 90 WriteLog calls/s on time). The start rate is 0.6 N, so the search
offers 0.6, 1.2, 0.85 and 1.01 N: every step it judges is clearly below or above N, except the last, which passes
either way; no step falls where a 3 s step cannot tell (an overload of a few percent fills the queue after it ends).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import grpc_host
from locust_runs import run_locust

from reports.cli import main as report

# Real Locust runs or processes of several seconds each: make test runs them, make test-fast does not.
pytestmark = pytest.mark.slow

STEP = "3"


def search(serve, tmp_path: Path, workload: str, store_rate: int, start: int, users: int, *args: str) -> dict:
    """``users`` is the most calls in flight. Each user builds its request before it waits for its scheduled start, so
    after a batch size is swept in, the next ``users`` calls still carry the previous one: kept to 2 s of calls at the
    start rate, and the second batch size starts below its knee, where the smaller batches still in hand do no harm."""
    server = serve("--queue-size", str(store_rate // 3), "--store-rate", str(store_rate))
    run = run_locust(workload, grpc_host(server), tmp_path, "--capacity-search", "--capacity-start", str(start),
                     "--capacity-step", STEP, *args, users=users, run_time="120s", timeout=150)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Capacity of grpc://" in run.stderr
    result = json.loads((tmp_path / "capacity.json").read_text())
    # The delivery audit of everything it sent: no log lost; on a machine busy beside it some calls may pass their
    # deadline, in doubt (a full make test beside two other sessions: "in_doubt"), never counted as lost
    audit = run.json("audit")
    assert audit["status"] in ("ok", "in_doubt") and audit["lost_min"] == 0, audit
    return result


def assert_knee_at(result: dict, logs_per_second: float) -> None:
    low, high = result["knee_between_rps"]
    logs_per_call = result["max_sustainable_logs_per_second"] / result["max_sustainable_rps"]
    assert low * logs_per_call <= logs_per_second * 1.05 and high * logs_per_call >= logs_per_second * 0.95, result
    assert result["achieved_precision"] <= result["precision"] == 0.1
    assert abs(result["max_sustainable_logs_per_second"] - logs_per_second) <= 0.2 * logs_per_second


def test_the_search_finds_the_storage_rate_of_writelog(serve, tmp_path, capsys):
    result = search(serve, tmp_path, "single", 100, 60, 100)
    assert_knee_at(result, 100)
    assert result["breaking_cause"]["status"] in ("FAILURE_RATE", "ACK_RATE", "BACKLOG_RISING")
    assert all({"offered_rps", "achieved_rps", "p50_ms", "p95_ms", "p99_ms", "failures", "backlog_end"} <= set(step)
               for step in result["steps"])  # fmt: skip
    code, output = report([str(tmp_path)]), capsys.readouterr()
    assert code == 0 and result["answer"] in output.out, output
    assert (tmp_path / "report_capacity.png").stat().st_size > 0
    assert "## Capacity" in (tmp_path / "report.md").read_text()


def test_the_search_finds_the_storage_rate_in_batches_and_sweeps_batch_sizes(serve, tmp_path):
    result = search(serve, tmp_path, "batch", 500, 15, 30, "--batch-sizes", "10,20")
    assert [found["batch_size"] for found in result["batch_sizes"]] == [10, 20]
    for found in result["batch_sizes"]:
        assert_knee_at(found | {"precision": 0.1}, 500)


def test_a_batch_size_sweep_of_a_workload_without_batches_is_refused_up_front(tmp_path):
    """The line for a bad --batch-sizes value is test_settings_arguments.py's (in process)."""
    single = run_locust("single", "grpc://127.0.0.1:9", tmp_path, "--capacity-search", "--batch-sizes", "10,100")
    assert single.returncode == 2 and "--batch-sizes='10,100' is not valid; accepted: a workload that sends " \
        "--batch-size batches (locustfiles/batch.py, mixed.py); WriteLogUser sends none" in single.stderr  # fmt: skip


def test_the_search_waits_for_a_slow_spawn_and_judges_steps_only_on_the_calls_they_made(serve, tmp_path):
    """-r 8 spawns the 40 users over 5 s: before the fix the first steps ran with a few users, offered a share of their
    rate (one user of 200: a quarter of a call per second), and a step that made no call was 100% failures, 'mostly
    no answer', blaming a service that had answered every call."""
    server = serve("--queue-size", "33", "--store-rate", "100")
    run = run_locust("single", grpc_host(server), tmp_path, "--capacity-search", "--capacity-start", "60",
                     "--capacity-step", STEP, "--no-freshness", users=40, spawn_rate=8, run_time="120s",
                     timeout=150)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads((tmp_path / "capacity.json").read_text())
    first = result["steps"][0]
    assert first["offered_rps"] == 60 and first["good"] and first["achieved_rps"] > 0.9 * 60, result["answer"]
    # Where the knee lands is test_the_search_finds_the_storage_rate_of_writelog's claim (this search once judged
    # 120 calls/s good against a 100/s store, a 3 s step that ended before the 33-log queue filled).
    assert all(step["achieved_rps"] > 0 for step in result["steps"]), result["steps"]
    assert result["breaking_cause"]["status"] in ("FAILURE_RATE", "ACK_RATE", "BACKLOG_RISING"), result["answer"]
    assert "no answer" not in result["answer"], result["answer"]
    assert "capacity search: the first step waits for the users to spawn (" in run.stderr, run.stderr[-3000:]
    assert "of 40, about 5 s at -r 8); raise -r to start sooner" in run.stderr


def test_a_step_is_judged_on_its_own_whatever_bad_step_came_before_it(serve, tmp_path):
    """The freshness verdict of a good rate does not depend on the steps' order: a store of 150 logs/s, searched from
    100 calls/s up (100 good, 200 bad) and from 400 down (400 and 200 bad first, leaving a backlog of hundreds of logs,
    then 100). Before the next step the search waits until the service has stored the bad step's backlog, and says so;
    a bad step's samples found late count in no later step."""
    found = {}
    for start in ("100", "400"):
        server = serve("--store-rate", "150")
        folder = tmp_path / start
        run = run_locust("single", grpc_host(server), folder, "--capacity-search", "--capacity-start", start,
                         "--capacity-step", STEP, "--capacity-precision", "0.4", "--slo-visibility-p95-ms", "500",
                         "--slo-p95-ms", "10000", "--freshness-query-share", "50", users=100, run_time="120s",
                         timeout=150)  # fmt: skip
        assert run.returncode == 0, run.stderr[-3000:]
        steps = {step["offered_rps"]: step for step in json.loads((folder / "capacity.json").read_text())["steps"]}
        found[start] = steps, run.stderr
    clean, after_bad = found["100"][0][100], found["400"][0][100]
    assert [*found["400"][0]] == [400, 200, 100] and not found["400"][0][200]["good"]
    assert clean["good"] and after_bad["good"], (clean, after_bad)
    assert clean["visibility_p95_ms"] <= 500 and after_bad["visibility_p95_ms"] <= 500, (clean, after_bad)
    assert clean["waited_for_backlog_seconds"] == 0 < after_bad["waited_for_backlog_seconds"]
    assert after_bad["backlog_start"] <= 150, "the bad steps' backlog was stored before the step started"
    stderr = found["400"][1]
    assert "capacity search: waited " in stderr and "until the service had stored its backlog (" in stderr, stderr
    assert "logs): the next step is judged on its own" in stderr
    assert "capacity step 100 calls/s offered (after " in stderr
