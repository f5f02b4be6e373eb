"""Locustfiles written by users: the README's own example passes its audit, a dead bridge loop fails fast, and the
suite's process tuning applies to them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import grpc_host
from locust_runs import PACED, ROOT, run_locust

from grpc_user.locust.lifecycle.garbage import YOUNG_GENERATION_THRESHOLD

# Real Locust runs or processes of several seconds each: make test runs them, make test-fast does not.
pytestmark = pytest.mark.slow


def readme_locustfile() -> str:
    """The code block of the README's "Writing your own locustfile" section."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Writing your own locustfile", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_the_readme_locustfile_tags_its_own_logs_and_passes_the_audit(serve, tmp_path):
    server = serve()
    locustfile = tmp_path / "checkout.py"
    locustfile.write_text(readme_locustfile())
    run = run_locust("checkout", grpc_host(server), tmp_path, "--target-rps", "30", users=3, run_time="3s",
                     locustfile=str(locustfile))  # fmt: skip
    stats = server.stop()
    assert run.returncode == 0, run.stderr[-3000:]
    audit = run.json("audit")
    assert audit["status"] == "ok" and audit["acked"] == audit["persisted"] == stats["acked"] > 0, audit


def test_calls_fail_at_once_with_a_clear_error_when_the_bridge_loop_dies(serve, tmp_path):
    server = serve()
    locustfile = str(Path(__file__).parent / "locustfiles" / "loop_dies.py")
    run = run_locust("loop_dies", grpc_host(server), tmp_path, *PACED, users=2, run_time="3s",
                     locustfile=locustfile,
                     timeout=45)  # fmt: skip
    failures = run.failures()
    stopped = "BRIDGE_STOPPED: the gRPC bridge's asyncio loop stopped"
    assert any(error.startswith(stopped) for error in failures), failures
    assert run.returncode == 4, "the audit cannot count either: an audit error"
    assert "Delivery audit failed (exit code 4)" in run.stderr


def test_the_public_imports_the_readme_shows_still_work():
    code = ("from grpc_user import LogClient, AsyncLogClient, write_log, batch_write_logs, query_logs, GrpcUser; "
            "from locust import User; assert issubclass(GrpcUser, User)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_run_keeps_the_garbage_collector_off_the_hot_path(serve, tmp_path):
    locustfile = str(Path(__file__).parent / "locustfiles" / "gc_state.py")
    run = run_locust("gc_state", grpc_host(serve()), tmp_path, users=2, run_time="1s", locustfile=locustfile)
    assert run.returncode == 0, run.stderr[-2000:]
    state = json.loads(next(line for line in run.stderr.splitlines() if line.startswith("GC_STATE "))[9:])
    # Frozen by the plugin's init: 63,368 objects in an exec'd Locust, 3,359 in a fork of the tests' fork server, which
    # froze its own imports before it forked (tests/forkserver.py); none without the plugin's freeze.
    assert state["frozen"] > 1_000, "start-up objects are out of the collector's reach"
    assert state["young_threshold"] == YOUNG_GENERATION_THRESHOLD


def test_a_task_that_raises_on_every_call_prints_its_first_traceback_then_a_count(serve, tmp_path):
    server = serve()
    run = run_locust("task_raises", grpc_host(server), tmp_path, "--no-audit", "--target-rps", "200", users=3,
                     run_time="2s",
                     locustfile="tests/locustfiles/task_raises.py")  # fmt: skip
    server.kill()
    raised = sum(int(row["Count"]) for row in run.rows("exceptions"))
    assert raised > 20, "Locust counts every exception in its exceptions table"  # 59 in 2 s on a loaded machine
    assert run.stderr.count("Traceback (most recent call last)") == 1, run.stderr[-3000:]
    counted = re.search(r"ValueError: no such adv_id \d+ \(at .*task_raises\.py:\d+\) was raised (\d+) times in "
                        r"tasks; only its first traceback was printed", run.stderr)  # fmt: skip
    assert counted and int(counted.group(1)) == raised, run.stderr[-3000:]
