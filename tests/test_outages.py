"""A load tool is used when things break: outages mid-run, calls in flight at the stop."""

from __future__ import annotations

import subprocess
import time

import pytest
from locust_runs import LOCUST, ROOT, LocustRun, logged_at

from reference_server.process import start_server_process

# Real Locust runs or processes of several seconds each: make test runs them, make test-fast does not.
pytestmark = pytest.mark.slow


def start_locust(host: str, tmp_path, *args: str) -> tuple[subprocess.Popen, str]:
    prefix = str(tmp_path / "single")
    command = [*LOCUST, "-f", "locustfiles/single.py", "--headless", "-u", "10", "-r", "100",
               "--host", host, "--csv", prefix, "--csv-full-history", "--no-audit", "--no-freshness",
               *args]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), prefix


def finish(process: subprocess.Popen, prefix: str) -> LocustRun:
    stdout, stderr = process.communicate(timeout=60)
    return LocustRun(process.returncode, stdout, stderr, prefix)


def test_server_killed_and_restarted_mid_run_records_unavailable_and_recovers(tmp_path):
    first = start_server_process("--queue-size", "1000000", "--flush-period", "0.2")
    port = str(first.port)
    started = time.monotonic()
    # Paced: 150 calls/s leave hundreds for the restarted server, where 10 users flat out would hold a core for 7 s.
    locust, prefix = start_locust(f"grpc://{first.target}", tmp_path, "-t", "7s", "--target-rps", "150")
    while first.stats()["acked"] == 0:  # the users run (seconds after the start on a busy machine): kill it under load
        assert locust.poll() is None and time.monotonic() - started < 60, "Locust never started its users"
        time.sleep(0.05)
    time.sleep(1)
    first.kill()
    time.sleep(1.5)
    second = start_server_process("--port", port, "--queue-size", "1000000", "--flush-period", "0.2")
    restarted = time.monotonic()
    while second.stats()["acked"] == 0:  # rewritten after every flush, 0.2 s
        assert time.monotonic() - restarted < 8, (
            "the channel did not reconnect within its 1 s backoff (2.5 s seen on a busy machine, 5 s with both cores "
            "busy and more)"
        )
        time.sleep(0.05)
    run = finish(locust, prefix)
    after_restart = second.stop()["calls"].get("WriteLog", 0)
    failures = run.failures()
    assert failures and all(error.startswith("UNAVAILABLE: ") for error in failures), failures
    assert after_restart > 100, "the channel did not reconnect to the restarted server"
    assert run.requests() == run.logs()["WriteLog"]["Requests"]
    # From the start of the test to the exit, as Locust logged them: 18 s from the Popen, start-up included, were seen
    # with the machine at load 11.
    elapsed = (logged_at(run.stderr, "Shutting down (exit code") - logged_at(run.stderr, "Ramping to")).total_seconds()
    assert elapsed < 7 + 8, f"the run did not stop on time ({elapsed:.1f} s)"


def test_calls_in_flight_at_the_stop_hold_it_no_longer_than_their_deadline_and_are_counted_in_doubt(tmp_path):
    server = start_server_process("--latency-ms", "20000")
    locust, prefix = start_locust(f"grpc://{server.target}", tmp_path, "-t", "2s", "--grpc-timeout", "3")
    run = finish(locust, prefix)
    server.kill()
    assert "Traceback" not in run.stderr
    # From -t to the exit, as Locust logged them: 15.9 s from the Popen, start-up included, were seen under load.
    stopping = logged_at(run.stderr, "Shutting down (exit code") - logged_at(run.stderr, "--run-time limit reached")
    assert stopping.total_seconds() < 3 + 6, f"calls in flight held the stop for {stopping.total_seconds():.1f} s"
    logs = run.logs()["WriteLog"]
    assert logs["Requests"] == logs["Logs In Doubt"] == run.requests() == 10, "every user's one call, counted"
    assert list(run.failures()) == ["DEADLINE_EXCEEDED: Deadline Exceeded"]
