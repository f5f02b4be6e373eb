"""``python -m reports history``: real runs compared with the ones before them, and a CI gate on regressions."""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import grpc_host
from locust_runs import ROOT, python_m, run_locust
from test_reports import in_process, plain_run

from grpc_user.histograms import LatencyHistograms
from grpc_user.run_files import write_histograms

# Real Locust runs or processes of several seconds each: make test runs them, make test-fast does not.
pytestmark = pytest.mark.slow


def history(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m reports history`` as a subprocess: its exit code as a user sees it."""
    return subprocess.run([*python_m("reports"), "history", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def history_in_process(*args: str) -> subprocess.CompletedProcess[str]:
    """The same in-process, without a process's imports."""
    return in_process("history", *args)


# 4 users asked for 200 calls/s in total: the fast server serves them, the 200 ms one at most 4 / 0.2 = 20 (a 50 ms
# one's 80 was not flagged at make test -n 6 beside another suite's benchmarks: its 71.3 calls/s matched the fast
# runs that load allowed).
RATE = ("--target-rps", "200")


def test_a_slower_newest_run_is_flagged_and_fails_the_gate(serve, tmp_path):
    runs = tmp_path / "runs"
    # Two runs against fast servers at the same time (a server each), then the newest against a slow one: the
    # history orders runs by their start.
    fast = {"20261120T000000Z-single": serve(), "20261121T000000Z-single": serve()}
    slow = {"20261129T000000Z-single": serve("--latency-ms", "200")}
    for servers in (fast, slow):
        for name in servers:
            (runs / name).mkdir(parents=True)
        with ThreadPoolExecutor(len(servers)) as pool:
            done = pool.map(lambda name, server: run_locust("single", grpc_host(server), runs / name, *RATE, users=4,
                                                            run_time="2s"), servers, servers.values())  # fmt: skip
            assert [run.returncode for run in done] == [0] * len(servers)

    passing = history_in_process(str(runs), "--last", "5")
    assert passing.returncode == 0, passing.stderr
    assert "## single, pacing at 200 calls/s (3 of 3 runs)" in passing.stdout and "p95 ms" in passing.stdout
    assert (runs / "history.md").exists() and (runs / "history_single_pacing_at_200_calls_s.png").stat().st_size > 0
    newest = passing.stdout.strip().splitlines()[-3]
    assert "requests/s" in newest and "worse" in newest, newest

    gated = history_in_process(str(runs), "--max-regression-pct", "30")
    assert gated.returncode == 1
    assert "regression: single, pacing at 200 calls/s 20261129T000000Z-single: requests/s" in gated.stderr


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    missing = history(str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and missing.stderr.strip().count("\n") == 0
    assert "no such folder of runs" in missing.stderr
    empty = history_in_process(str(tmp_path))
    assert empty.returncode == 2 and "no run folders" in empty.stderr
    bad = history_in_process(str(tmp_path), "--last", "0")
    assert bad.returncode == 2 and "--last" in bad.stderr and bad.stderr.strip().count("\n") == 0


def write_run(runs, folder: str, rps: float, options: dict, capacity: dict | None = None) -> None:
    """A run folder by hand: Locust's files of a plain 10 s run, the suite's _run.json and a search's capacity.json."""
    run = runs / folder
    plain_run(run, [("WriteLog", int(rps * 10), 0)], prefix="locust")
    info = {"workload": "single", "started_at": folder[:8], "users": 10, "options": {"capacity": None,
            "arrival_rate": "", "target_rps": 0.0, **options}}  # fmt: skip
    (run / "locust_run.json").write_text(json.dumps(info))
    if capacity is not None:
        (run / "capacity.json").write_text(json.dumps({"steps": [], "batch_sizes": [], "breaking_cause": {
            "status": "ACK_RATE", "words": "acked < 95%"}, "slo": {"p95_ms": 1000, "failure_rate": 0.01},
            **capacity}))  # fmt: skip


def test_history_compares_searches_by_their_answer_and_open_runs_by_their_rate(tmp_path):
    runs, search = tmp_path / "runs", {"capacity": {"start": 100}}
    answer = lambda logs: {"answer": f"Capacity: {logs:,} logs/s sustained", "max_sustainable_rps": logs,  # noqa: E731
                           "max_sustainable_logs_per_second": logs}  # fmt: skip
    write_run(runs, "20261101T000000Z-capacity-single", 50, search, answer(1000))
    write_run(runs, "20261102T000000Z-capacity-single", 20, search, answer(2800))  # fewer calls/s, more capacity
    write_run(runs, "20261103T000000Z-capacity-single", 10, search)  # stopped by SIGTERM: no capacity.json
    write_run(runs, "20261104T000000Z-single", 100, {"arrival_rate": "100"})
    write_run(runs, "20261105T000000Z-single", 200, {"arrival_rate": "200"})
    write_run(runs, "20261106T000000Z-single", 100, {"arrival_rate": "100"})
    done = history_in_process(str(runs))
    assert done.returncode == 0, done.stderr
    capacity = done.stdout.split("## single-capacity", 1)[1].split("\n## ", 1)[0]
    assert "2,800" in capacity and "worse" not in capacity, capacity
    interrupted = next(line for line in capacity.splitlines() if "20261103T000000Z" in line)
    assert "interrupted" in interrupted and "worse" not in interrupted
    assert "## single, open model at 100 calls/s offered (2 of 2 runs)" in done.stdout
    assert "## single, open model at 200 calls/s offered (1 of 1 runs)" in done.stdout
    assert "closed model" not in done.stdout, "the searches are not ordinary runs"
    report = in_process(runs / "20261105T000000Z-single", "--no-charts")
    assert report.returncode == 0, report.stderr
    text = (runs / "20261105T000000Z-single" / "report.md").read_text()
    assert "| load model | open model: 200 calls/s offered |" in text, "the report states the offered rate"

    write_run(runs, "20261107T000000Z-capacity-single", 60, search, answer(1200))
    gated = history_in_process(str(runs), "--max-regression-pct", "10")
    assert gated.returncode == 1
    assert "regression: single-capacity 20261107T000000Z-capacity-single: logs/s sustained 1,200.0" in gated.stderr


def test_a_sub_millisecond_p95_regression_is_flagged_when_every_run_has_hdr_histograms(tmp_path):
    """The history compares HDR latencies to the microsecond, as the baseline comparison does: a p95 that doubles
    from 0.3 to 0.6 ms is a regression, where Locust's whole milliseconds (1 ms floor) would hide it."""
    runs = tmp_path / "runs"
    for day, p95_us in ((1, 300), (2, 300), (3, 600)):
        folder = f"2026110{day}T000000Z-single"
        write_run(runs, folder, 100, {})
        histograms = LatencyHistograms()
        for _ in range(100):
            histograms.record("WriteLog", "OK", p95_us)
        write_histograms(str(runs / folder / "locust"), {"latency": histograms})
    done = history_in_process(str(runs), "--max-regression-pct", "50")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "20261103T000000Z-single: p95 ms 0.600 vs median 0.300" in done.stderr, done.stderr
