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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import grpc_host
from hostile_answers import SilentServer
from locust_runs import LOCUST, PACED, ROOT, LocustRun, free_port
from web_runs import web_ui_process

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


def wait_for_the_preflight(server: SilentServer, process: subprocess.Popen, timeout: float = 30.0) -> None:
    """Until the preflight's channel has connected to ``server`` (its call waits there for its 3 s deadline)."""
    deadline = time.monotonic() + timeout
    while not server.connections:
        assert process.poll() is None, f"Locust ended before its preflight connected: {process.returncode}"
        assert time.monotonic() < deadline, f"no preflight connection within {timeout:g} s"
        time.sleep(0.02)


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_the_preflight_refuses_the_run_in_one_line_and_leaves_no_files(tmp_path, signal_number):
    with SilentServer() as server:
        locust = Locust(tmp_path, server.target, run_time="10s")
        wait_for_the_preflight(server, locust.process)
        locust.signal(signal_number)
        run = locust.finish()
    assert run.returncode == 1, run.stderr[-3000:]
    line = f"locust: error: the preflight was cut short by {signal_number.name} after"
    assert line in run.stderr and f", before target {server.target} answered; no test ran" in run.stderr, run.stderr[
        -3000:
    ]
    assert "Traceback" not in run.stderr and "KeyboardInterrupt" not in run.stderr, run.stderr[-3000:]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["stderr.log"], "a refused run leaves no files"


def test_a_ctrl_c_during_a_web_ui_test_s_preflight_refuses_that_test_and_exits_non_zero(tmp_path):
    """The preflight runs inside /swarm, before Locust's view: the cut start's answer is a refusal, not a start."""
    with SilentServer() as server, web_ui_process(tmp_path, server.target, locustfile="locustfiles/single.py") as web:
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(web.post, "swarm", {"user_count": "2", "spawn_rate": "2"})
            wait_for_the_preflight(server, web.process)
            web.process.send_signal(signal.SIGINT)
            refused = answer.result(FINISH_TIMEOUT_SECONDS)
        assert web.process.wait(FINISH_TIMEOUT_SECONDS) == 1, web.log.read_text()[-3000:]
        output = web.log.read_text()
    assert refused["success"] is False and refused["message"].startswith("the preflight was cut short by SIGINT after")
    assert refused["message"].endswith(f", before target {server.target} answered; no test ran"), refused
    assert output.count(refused["message"]) == 2, "the line, and in the failures shown at the quit"
    assert "Shutting down (exit code 1)" in output and "Traceback" not in output, output[-3000:]
    assert "every log of this test carries" not in output and "Ramping" not in output, "no test started"


def ctrl_c_to_a_master_with_one_of_two_workers(tmp_path: Path, host: str, ready_line: str) -> str:
    """A headless ``--master --expect-workers 2`` and one ``--worker``: SIGINT to the master once its log has
    ``ready_line``; the master exits 1 and tells the worker to quit (it would run on until its 60 s heartbeat
    timeout). Returns the master's log."""
    port = str(free_port())
    master_log, worker_log = tmp_path / "master.log", tmp_path / "worker.log"
    common = [*LOCUST, "-f", "locustfiles/single.py", "--host", host]
    with open(master_log, "w") as master_err, open(worker_log, "w") as worker_err:
        master = subprocess.Popen([*common, "--master", "--headless", "--expect-workers", "2", "-t", "30s", "--csv",
                                   str(tmp_path / "run"),
                                   "--master-bind-host", "127.0.0.1", "--master-bind-port", port, "--loglevel",
                                   "DEBUG"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=master_err)  # fmt: skip
        worker = subprocess.Popen([*common, "--worker", "--master-port", port], cwd=ROOT, stdout=subprocess.DEVNULL,
                                  stderr=worker_err)  # fmt: skip
    try:
        deadline = time.monotonic() + FINISH_TIMEOUT_SECONDS
        while ready_line not in master_log.read_text():
            assert master.poll() is None and time.monotonic() < deadline, master_log.read_text()[-3000:]
            time.sleep(0.02)
        master.send_signal(signal.SIGINT)
        assert master.wait(FINISH_TIMEOUT_SECONDS) == 1, master_log.read_text()[-3000:]
        worker.wait(15)  # TimeoutExpired: the worker was not told to quit
    finally:
        for process in (master, worker):
            if process.poll() is None:
                process.kill()
    output = master_log.read_text()
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output[-3000:]
    assert not list(tmp_path.glob("run_*.csv")), "no test ran: no run files (Locust's own had headers and zeros)"
    return output


def test_ctrl_c_while_the_master_waits_for_its_workers_tells_them_to_quit_and_exits_in_one_line(serve, tmp_path):
    """Before: a KeyboardInterrupt traceback through Locust's ``start_automatic_run``, and the worker connected so far
    left running until its heartbeat timeout (Locust's own TODO there)."""
    waiting = "Waiting for workers to be ready, 1 of 2 connected"  # its preflight is done
    output = ctrl_c_to_a_master_with_one_of_two_workers(tmp_path, grpc_host(serve()), waiting)
    assert "SIGINT while the master waited for its workers (1 of 2 still connected): no test ran" in output, output


def test_a_master_whose_preflight_is_cut_short_tells_the_workers_connected_meanwhile_to_quit(tmp_path):
    """A worker that connected while the master's preflight waited on a silent target ran on after the master's
    one-line refusal (seen in CI: the worker still running 15 s later)."""
    with SilentServer() as server:
        output = ctrl_c_to_a_master_with_one_of_two_workers(tmp_path, server.target, "1 workers connected")
    assert "the preflight was cut short by SIGINT" in output, output[-3000:]


def test_ctrl_c_to_an_idle_web_ui_says_nothing_of_a_test_stopping(serve, tmp_path):
    server = serve()
    with web_ui_process(tmp_path, grpc_host(server), "--audit-settle", "1", locustfile="locustfiles/single.py") as web:
        assert web.post("swarm", {"user_count": "2", "spawn_rate": "2", "target_rps": "50"})["success"]
        time.sleep(1)
        assert web.post("stop", {})["success"]
        web.wait_for("grpc-audit", lambda audit: audit.get("status") == "ok", timeout=30)
        summaries = web.log.read_text().count("Logs per RPC")
        web.process.send_signal(signal.SIGINT)
        # The quit prints the logs summary, writes Locust's --csv files at once, and Locust's last steps follow: a
        # repeat sent once the summary is out lands there, where it ended the process by SIGINT (-2) in 5 runs of 6
        # before stop_signals.ignore_sigint_from_now (when the quit waited a second for Locust's writer, it landed in
        # that wait)
        deadline = time.monotonic() + FINISH_TIMEOUT_SECONDS
        while web.log.read_text().count("Logs per RPC") == summaries:
            assert time.monotonic() < deadline and web.process.poll() is None, web.log.read_text()[-3000:]
            time.sleep(0.01)
        web.process.send_signal(signal.SIGINT)
        assert web.process.wait(FINISH_TIMEOUT_SECONDS) == 0, web.log.read_text()[-3000:]
        output = web.log.read_text()
    assert "already stopping" not in output and "Traceback" not in output, output[-3000:]
    assert "Shutting down (exit code 0)" in output


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


def test_a_ctrl_c_while_locust_starts_is_one_line_and_exit_1(serve, tmp_path):
    """From the command line's parsing to Locust's init (where it forks its --processes workers and makes its
    runner), a Ctrl-C was Locust's own KeyboardInterrupt traceback, exit 130. A listener that takes its time there
    (registered after the suite's) holds the process in that window."""
    locustfile = tmp_path / "slow_start.py"
    locustfile.write_text(
        "import sys, time\n"
        "from locust import events\n"
        "from locustfiles.single import *  # noqa: F403\n"
        "@events.init_command_line_parser.add_listener\n"
        "def _(parser, **_):\n"
        "    sys.stderr.write('parsing the command line\\n'); sys.stderr.flush()\n"
        "    end = time.monotonic() + 20\n"
        "    while time.monotonic() < end:  # busy, as Locust's gc.collect and forks are\n"
        "        pass\n"
    )
    stderr_path = tmp_path / "stderr.log"
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen([*LOCUST, "-f", str(locustfile), "--headless", "-u", "1", "-t", "5s", "--host",
                                    grpc_host(serve())], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr,
                                   env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    try:
        deadline = time.monotonic() + FINISH_TIMEOUT_SECONDS
        while "parsing the command line" not in stderr_path.read_text():
            assert process.poll() is None and time.monotonic() < deadline, stderr_path.read_text()[-3000:]
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        signalled = time.monotonic()
        assert process.wait(FINISH_TIMEOUT_SECONDS) == 1, stderr_path.read_text()[-3000:]
        assert time.monotonic() - signalled < 10, "the Ctrl-C waited for the start's work to end"
    finally:
        if process.poll() is None:
            process.kill()
    output = stderr_path.read_text()
    assert "locust: error: SIGINT while Locust was starting: no test ran" in output, output[-3000:]
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output[-3000:]
