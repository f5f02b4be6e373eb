"""Every run stops when told and answers: no rate starves gevent's hub, a capacity search against a service that
fails every call answers quickly, and a run that ends without an answer says so with a non-zero exit."""

from __future__ import annotations

import fcntl
import os
import re
import signal
import struct
import subprocess
import sys
import termios
import time

import pytest
from conftest import grpc_host
from hostile_answers import GarbageAnswers, SilentServer
from locust_runs import LOCUST, ROOT, free_port, run_locust
from web_runs import http, web_ui_process

from grpc_user.locust.settings.suite import MAX_MESSAGE_BYTES

# Real Locust runs or processes of several seconds each: make test runs them, make test-fast does not.
pytestmark = pytest.mark.slow

# Far above what any process can dispatch: before the fix, its dispatcher never yielded and only SIGKILL ended it.
IMPOSSIBLE_RATE = "1000000"


def locust_command(host: str, tmp_path, *args: str, users: int = 5) -> list[str]:
    return [*LOCUST, "-f", "locustfiles/single.py", "--headless", "-u", str(users), "-r",
            str(users), "--host", host, "--csv", str(tmp_path / "single"), "--audit-settle", "1", *args]  # fmt: skip


def test_a_rate_no_process_can_dispatch_still_stops_on_time_and_reports_its_shortfall(serve, tmp_path):
    server = serve()
    started = time.monotonic()
    run = run_locust("single", grpc_host(server), tmp_path, "--arrival-rate", IMPOSSIBLE_RATE, run_time="2s",
                     timeout=60)  # fmt: skip
    elapsed = time.monotonic() - started
    assert elapsed < 2 + 20, f"-t 2s took {elapsed:.1f} s"
    assert run.returncode == 1, run.stderr[-3000:]
    arrivals = run.rows("arrivals")[0]
    assert int(arrivals["Offered"]) > 100_000, arrivals
    assert int(arrivals["Made"]) == run.requests("WriteLog") > 0, "every call made is a request; no drop is"
    assert int(arrivals["Dropped"]) == int(arrivals["Offered"]) - int(arrivals["Made"])
    assert "Arrival" not in run.stats(), "dropped arrivals are not requests"
    assert "scheduled calls were dropped (exit code 1)" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_a_run_at_a_million_calls_per_second_within_seconds(serve, tmp_path, signal_number):
    server = serve()
    process = subprocess.Popen(locust_command(grpc_host(server), tmp_path, "--arrival-rate", IMPOSSIBLE_RATE,
                                              "--no-audit", "-t", "60s"),
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        started = []
        while not any("arrival rate" in line for line in started):  # the test runs (on a busy machine: seconds)
            started.append(process.stderr.readline())
            assert started[-1], "".join(started)
        time.sleep(1)  # the dispatcher at full tilt
        signalled = time.monotonic()
        process.send_signal(signal_number)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    stopped_in = time.monotonic() - signalled
    assert stopped_in < 10, f"{signal_number.name} took {stopped_in:.1f} s to end the run"
    assert "Shutting down" in stderr, stderr[-3000:]
    assert (tmp_path / "single_arrivals.csv").exists() and (tmp_path / "single_logs.csv").exists()


def test_the_largest_accepted_message_size_starts_at_once_and_its_run_time_ends_the_run(serve, tmp_path):
    """--message-bytes 4194304 (the validator's maximum): before the fix, the template pool drew 4 GiB of text one
    character at a time in the event loop and -t, SIGTERM and SIGINT went unheard for minutes. Paced at 5 calls/s:
    the pool is drawn before the first call whatever the rate, and unpaced calls of 4 MiB kept both cores busy."""
    server = serve("--max-message-bytes", str(8 * 1024 * 1024))  # a 4 MiB message is above gRPC's default limit
    started = time.monotonic()
    run = run_locust("single", grpc_host(server), tmp_path, "--message-bytes", str(MAX_MESSAGE_BYTES),
                     "--no-freshness", "--target-rps", "5", users=1, run_time="2s", timeout=90)  # fmt: skip
    elapsed = time.monotonic() - started
    assert elapsed < 2 + 20, f"-t 2s took {elapsed:.1f} s"
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.requests("WriteLog") > 0 and not run.failures(), run.stderr[-3000:]
    assert "Traceback" not in run.stderr


def test_a_capacity_search_starting_at_a_million_calls_per_second_stops_on_time(serve, tmp_path):
    server = serve()
    started = time.monotonic()
    run = run_locust("single", grpc_host(server), tmp_path, "--capacity-search", "--capacity-start", IMPOSSIBLE_RATE,
                     "--capacity-step", "2", run_time="2s", timeout=60)  # fmt: skip
    elapsed = time.monotonic() - started
    assert elapsed < 2 + 20, f"-t 2s took {elapsed:.1f} s"
    assert run.returncode == 1, run.stderr[-3000:]
    assert "before the search found the knee: no answer and no capacity.json (exit code 1)" in run.stderr


def test_a_capacity_search_against_a_service_that_fails_every_call_answers_quickly_and_fails(tmp_path):
    with GarbageAnswers() as server:
        started = time.monotonic()
        run = run_locust("single", server.target, tmp_path, "--capacity-search", "--capacity-step", "2",
                         users=50, run_time="10m", timeout=120)  # fmt: skip
        elapsed = time.monotonic() - started
    assert elapsed < 60, f"the search took {elapsed:.1f} s to answer"
    assert run.returncode != 0, run.stderr[-3000:]
    assert "every call failed at 100 calls/s and no rate worked" in run.stderr
    assert "Capacity of grpc://" in run.stderr and "no rate tried was sustained" in run.stderr
    assert "could not count the stored logs" in run.stderr, "the backlog check skipped, no wait for it"


def test_a_capacity_search_cut_short_by_its_run_time_exits_non_zero_and_says_why(serve, tmp_path):
    server = serve()
    run = run_locust("single", grpc_host(server), tmp_path, "--capacity-search", "--capacity-step", "2",
                     users=50, run_time="3s", timeout=60)  # fmt: skip
    assert run.returncode == 1, run.stderr[-3000:]
    assert "before the search found the knee: no answer and no capacity.json (exit code 1)" in run.stderr
    assert not (tmp_path / "capacity.json").exists()


def test_a_target_that_never_answers_refuses_an_autostarted_test_even_when_run_time_ends_it_first(tmp_path):
    with SilentServer() as server:
        started = time.monotonic()
        command = [*LOCUST, "-f", "locustfiles/single.py", "--autostart", "-u", "2", "-r", "2",
                   "-t", "3s", "--autoquit", "1", "--web-host", "127.0.0.1", "--web-port", str(free_port()),
                   "--host", server.target, "--csv", str(tmp_path / "single")]  # fmt: skip
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
        elapsed = time.monotonic() - started
    assert done.returncode != 0, done.stderr[-3000:]
    assert f"target {server.target.removeprefix('grpc://')}" in done.stderr or "is not serving" in done.stderr
    assert "is not serving the log service" in done.stderr, done.stderr[-3000:]
    assert elapsed < 30


def test_a_long_audit_wait_logs_its_progress_without_a_terminal(serve, tmp_path):
    """The store takes 50 logs/s, 10 at a time (never still for --audit-settle's 1 s): the audit of 500 acknowledged
    logs waits seconds (a progress line every 5 s), and says how it goes."""
    server = serve("--store-rate", "50", "--flush-batch", "10")
    run = run_locust("single", grpc_host(server), tmp_path, "--max-requests", "500", "--audit-timeout", "60",
                     run_time="30s", timeout=90)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    line = r"Delivery audit: stored: [\d,]+ of 500 logs \([\d,]+ logs/s, about [\d,]+ s left"
    assert re.search(line, run.stderr), run.stderr[-3000:]


def test_a_long_wait_on_a_terminal_shows_a_bar_with_the_count_the_rate_and_an_eta():
    primary, secondary = os.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a terminal has a size
    code = ("import time; from grpc_user.locust.run.progress import WaitProgress\n"
            "bar = WaitProgress('Delivery audit: stored', 1000)\n"
            "for stored in range(100, 600, 100):\n    bar.update(stored); time.sleep(0.6)\n"
            "bar.close()")  # fmt: skip
    try:
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, stderr=secondary, timeout=60, check=True)
        shown = os.read(primary, 1 << 16).decode(errors="replace")
    finally:
        os.close(primary)
        os.close(secondary)
    bar = r"Delivery audit: stored:\s+[1-9]\d%\|.*\| \d00/1\.00k \[\d\d:\d\d<\d\d:\d\d, [\d.]+ logs/s\]"
    assert re.search(bar, shown), shown  # the count, the time so far and left (ETA), the rate


def test_the_web_ui_answers_and_stops_a_test_at_a_million_calls_per_second(serve, tmp_path):
    server = serve()
    with web_ui_process(tmp_path, grpc_host(server), locustfile="locustfiles/single.py") as web:
        started = web.post("swarm", {"user_count": "5", "spawn_rate": "5", "arrival_rate": IMPOSSIBLE_RATE})
        assert started["success"], started
        time.sleep(1)  # the dispatcher at full tilt
        assert "grpc_log_loadtest_users" in http(f"{web.url}/metrics"), "/metrics answers while the test runs"
        asked = time.monotonic()
        assert web.post("stop", {})["success"]
        web.wait_for("stats/requests", lambda stats: stats["state"] == "stopped", timeout=20)
        assert time.monotonic() - asked < 20
