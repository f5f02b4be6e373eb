"""Signals during the end of a run never lose its files: a repeated Ctrl-C or SIGTERM lets the stop finish, or cuts
the audit short as ``interrupted``; the embedded-server wrapper never passes on a signal its child already got.
Real Locust processes, real signals, sent once the run is where the test means it to be."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from conftest import grpc_host
from locust_runs import LOCUST, PACED, ROOT, LocustRun

# Real Locust runs or processes of several seconds each: make test runs them, make test-fast does not.
pytestmark = pytest.mark.slow

FINISH_TIMEOUT_SECONDS = 60.0
RUN_FILES = ("logs.csv", "latency.csv", "run.json", "stats.csv")


class Locust:
    """A headless Locust process whose stderr goes to a file, so a test can wait for a line before it signals."""

    def __init__(self, tmp_path: Path, host: str, *args: str, users: int = 4, run_time: str = "60s") -> None:
        self.prefix = str(tmp_path / "single")
        self._stderr_path = tmp_path / "stderr.log"
        command = [*LOCUST, "-f", "locustfiles/single.py", "--headless", "-u", str(users),
                   "-r", str(users), "-t", run_time, "--csv", self.prefix, "--host", host, *args]  # fmt: skip
        with open(self._stderr_path, "w") as stderr:
            self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True)

    def stderr(self) -> str:
        return self._stderr_path.read_text()

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.stderr():
            assert self.process.poll() is None, f"Locust ended before {text!r}: {self.stderr()[-3000:]}"
            assert time.monotonic() < deadline, f"no {text!r} within {timeout:g} s: {self.stderr()[-3000:]}"
            time.sleep(0.05)

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def finish(self) -> LocustRun:
        stdout, _ = self.process.communicate(timeout=FINISH_TIMEOUT_SECONDS)
        return LocustRun(self.process.returncode, stdout, self.stderr(), self.prefix)


def assert_every_file_written(run: LocustRun) -> None:
    for suffix in RUN_FILES:
        assert Path(f"{run.prefix}_{suffix}").exists(), f"no _{suffix}: {run.stderr[-3000:]}"
    assert "Traceback" not in run.stderr + run.stdout, run.stderr[-3000:]


def test_a_ctrl_c_while_the_audit_waits_cuts_it_short_as_interrupted_and_writes_every_file(serve, tmp_path):
    # The audit waits for seconds: storage (20 logs/s, 5 at a time) is far slower than the load, 100 calls/s, which a
    # busy machine may not reach (161 calls in 2 s were seen at 300/s): 2 s of it leave seconds of storage to wait for.
    server = serve("--store-rate", "20", "--flush-batch", "5")
    locust = Locust(tmp_path, grpc_host(server), "--audit-timeout", "60", "--audit-settle", "30", *PACED, run_time="2s")
    locust.wait_for("Delivery audit: waiting")
    time.sleep(0.5)
    locust.signal(signal.SIGINT)
    run = locust.finish()
    assert_every_file_written(run)
    audit = run.json("audit")
    assert audit["status"] == "interrupted", audit
    assert 0 < audit["persisted"] < audit["acked"] and audit["lost_min"] == 0, audit
    assert audit["lost_max"] == audit["acked"] + audit["in_doubt"] - audit["persisted"], "0..missing"
    assert run.returncode == 4, run.stderr[-3000:]
    assert run.stderr.count("Delivery audit INTERRUPTED: cut short by SIGINT after") == 2, "the line and the summary"
    assert run.stderr.count("delivery unknown (exit code 4)") == 1, run.stderr[-3000:]
    assert run.json("run")["audit"]["status"] == "interrupted"


def test_a_second_ctrl_c_during_the_stop_lets_the_stop_finish_and_write_everything(serve, tmp_path):
    server = serve("--latency-ms", "1500")  # every user has a call in flight for 1.5 s when the stop begins
    locust = Locust(tmp_path, grpc_host(server), "--audit-settle", "1")
    locust.wait_for("All users spawned")
    time.sleep(2)
    locust.signal(signal.SIGINT)
    locust.wait_for("Stopping users first")
    locust.signal(signal.SIGINT)
    run = locust.finish()
    stats = server.stop()
    assert_every_file_written(run)
    assert run.stderr.count("SIGINT: the test is already stopping") == 1, run.stderr[-3000:]
    audit = run.json("audit")
    assert (audit["status"], audit["acked"]) == ("ok", stats["acked"]), audit
    assert run.returncode == 0, run.stderr[-3000:]


def test_a_repeated_sigterm_prints_the_summary_and_the_audit_once(serve, tmp_path):
    server = serve("--latency-ms", "1500")
    locust = Locust(tmp_path, grpc_host(server), "--audit-settle", "1")
    locust.wait_for("All users spawned")
    time.sleep(1)
    locust.signal(signal.SIGTERM)
    locust.wait_for("Stopping users first")
    locust.signal(signal.SIGTERM)
    run = locust.finish()
    server.stop()
    assert_every_file_written(run)
    output = run.stdout + run.stderr
    assert output.count("Delivery audit OK") == 1, output[-3000:]
    assert output.count("Logs per RPC") == 1 and output.count("Shutting down (exit code") == 1, output[-3000:]
    assert "SystemExit" not in output
    assert run.returncode == 0, run.stderr[-3000:]


COUNT_SIGINTS = """
import os, signal, sys, time
received = []
signal.signal(signal.SIGINT, lambda *_: received.append(time.monotonic()))
if os.isatty(0):  # Locust reads keys from a terminal: its process group must own the terminal's foreground
    print(f"foreground: {os.tcgetpgrp(0) == os.getpgrp()}", flush=True)
print("ready", flush=True)
deadline = time.monotonic() + float(sys.argv[1])
while time.monotonic() < deadline and not (received and time.monotonic() - received[0] > 1.5):
    time.sleep(0.05)
print(f"SIGINTs received: {len(received)}", flush=True)
"""


def test_the_embedded_server_wrapper_never_passes_on_a_signal_its_child_got_from_its_process_group(tmp_path):
    """``timeout -s INT`` (no terminal, as CI) signals the wrapper and then its whole process group."""
    command = ["timeout", "-s", "INT", "8", sys.executable, "-m", "reference_server.around", "--", sys.executable,
               "-c", COUNT_SIGINTS, "12"]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert "SIGINTs received: 1" in done.stdout, (done.stdout, done.stderr)


def test_the_embedded_server_wrapper_passes_on_a_signal_sent_to_it_alone(tmp_path):
    """Kubernetes or ``kill PID``: the wrapper alone gets SIGINT and must pass it on, once."""
    command = [sys.executable, "-m", "reference_server.around", "--", sys.executable, "-c", COUNT_SIGINTS, "4"]
    wrapper = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    assert wrapper.stdout.readline().strip() == "ready"
    os.kill(wrapper.pid, signal.SIGINT)
    stdout, stderr = wrapper.communicate(timeout=60)
    assert "SIGINTs received: 1" in stdout, (stdout, stderr)


def test_the_terminal_s_ctrl_c_reaches_the_wrapped_command_once(tmp_path):
    """A real terminal (a pty whose Ctrl-C the kernel turns into SIGINT for the foreground process group)."""
    primary, secondary = os.openpty()

    def own_terminal() -> None:  # a session whose foreground group gets the terminal's Ctrl-C, as in a shell
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    command = [sys.executable, "-m", "reference_server.around", "--", sys.executable, "-c", COUNT_SIGINTS, "20"]
    try:
        wrapper = subprocess.Popen(command, cwd=ROOT, stdin=secondary, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, start_new_session=True, preexec_fn=own_terminal)  # fmt: skip
        assert wrapper.stdout.readline().strip() == "foreground: True"
        assert wrapper.stdout.readline().strip() == "ready"
        os.write(primary, b"\x03")  # Ctrl-C typed at the terminal
        stdout, stderr = wrapper.communicate(timeout=60)
    finally:
        os.close(primary)
        os.close(secondary)
    assert "SIGINTs received: 1" in stdout, (stdout, stderr)
    assert wrapper.returncode == 0, stderr
