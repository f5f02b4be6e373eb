"""``python -m reports history``: real runs compared with the ones before them, and a CI gate on regressions."""

from __future__ import annotations

import subprocess
import sys

from conftest import grpc_host
from locust_runs import ROOT, run_locust


def history(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reports", "history", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def test_a_slower_newest_run_is_flagged_and_fails_the_gate(serve, tmp_path):
    runs = tmp_path / "runs"
    fast = serve()
    for index in range(2):
        folder = runs / f"2026112{index}T000000Z-single"
        folder.mkdir(parents=True)
        assert run_locust("single", grpc_host(fast), folder, users=4, run_time="2s").returncode == 0
    slow = serve("--latency-ms", "50")
    folder = runs / "20261129T000000Z-single"
    folder.mkdir()
    assert run_locust("single", grpc_host(slow), folder, users=4, run_time="2s").returncode == 0

    passing = history(str(runs), "--last", "5")
    assert passing.returncode == 0, passing.stderr
    assert "## single (3 of 3 runs)" in passing.stdout and "p95 ms" in passing.stdout
    assert (runs / "history.md").exists() and (runs / "history_single.png").stat().st_size > 0
    newest = passing.stdout.strip().splitlines()[-3]
    assert "requests/s" in newest and "worse" in newest, newest

    gated = history(str(runs), "--max-regression-pct", "30")
    assert gated.returncode == 1
    assert "regression: single 20261129T000000Z-single: requests/s" in gated.stderr


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    missing = history(str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and missing.stderr.strip().count("\n") == 0
    assert "no such folder of runs" in missing.stderr
    empty = history(str(tmp_path))
    assert empty.returncode == 2 and "no run folders" in empty.stderr
    bad = history(str(tmp_path), "--last", "0")
    assert bad.returncode == 2 and "--last" in bad.stderr and bad.stderr.strip().count("\n") == 0
