"""A run ends one way however it is stopped: users stop, calls in flight finish and are counted, workers'
final counts arrive, then the audit, then the files, then the exit. Real Locust processes, real signals."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import psutil
import pytest
from audit_barriers import stored_barriers, without_barriers
from conftest import grpc_host
from locust_runs import LOCUST, PACED, REAL_LOCUST, ROOT, LocustRun, distributed_args, run_locust

from reports.cli import main as report

# Real Locust runs or processes of several seconds each: make test runs them, make test-fast does not.
pytestmark = pytest.mark.slow

SIGNAL_AFTER_SECONDS = 3.0
FINISH_TIMEOUT_SECONDS = 60.0
RUN_FILES = ("stats", "logs", "latency")


def locust_command(workload: str, prefix: str, *args: str, users: int = 10, run_time: str = "60s",
                   locust: tuple[str, ...] = LOCUST) -> list[str]:  # fmt: skip
    """A headless Locust run (for a minute unless stopped); ``--host`` among ``args`` or from LOCUST_HOST. ``locust``:
    the command (``REAL_LOCUST`` for a test that finds the workers of ``--processes`` among its children)."""
    return [*locust, "-f", f"locustfiles/{workload}.py", "--headless", "-u", str(users),
            "-r", str(users), "-t", run_time, "--csv", prefix, "--audit-settle", "1", *args]  # fmt: skip


def wait_until_running(prefix: str, process: subprocess.Popen) -> None:
    """Until Locust's history file has a row of figures (its users run), however slowly a busy machine starts it."""
    history, deadline = Path(f"{prefix}_stats_history.csv"), time.monotonic() + FINISH_TIMEOUT_SECONDS
    while not (history.exists() and len(history.read_text().splitlines()) > 1):
        assert process.poll() is None and time.monotonic() < deadline, "Locust never started its users"
        time.sleep(0.1)


def stopped_by_signal(command: list[str], prefix: str, signum: int, **popen: object) -> LocustRun:
    """Start ``command``, send ``signum`` a few seconds into the run, wait for it to finish by itself."""
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               **popen)  # fmt: skip
    wait_until_running(prefix, process)
    time.sleep(SIGNAL_AFTER_SECONDS - 1)
    os.killpg(process.pid, signum) if popen.get("start_new_session") else process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=FINISH_TIMEOUT_SECONDS)
    return LocustRun(process.returncode, stdout, stderr, prefix)


def assert_audit_counts_what_the_server_acknowledged(run: LocustRun, server_acked: int) -> dict:
    """Every log the service acknowledged was counted: exactly, or within the logs in doubt."""
    for suffix in RUN_FILES:
        assert Path(f"{run.prefix}_{suffix}.csv").exists(), f"no _{suffix}.csv: {run.stderr[-2000:]}"
    audit = run.json("audit")
    assert audit["acked"] <= server_acked <= audit["acked"] + audit["in_doubt"], (audit, server_acked)
    assert audit["status"] == "ok", audit
    assert run.logs()["Aggregated"]["Logs Acked"] == audit["acked"]
    return audit


def test_sigterm_stops_users_before_the_audit_so_every_acknowledged_log_is_counted(serve, tmp_path):
    server = serve("--queue-size", "5000000")
    prefix = str(tmp_path / "batch")
    command = locust_command("batch", prefix, "--host", grpc_host(server), "--batch-size", "10", *PACED, users=4)
    run = stopped_by_signal(command, prefix, signal.SIGTERM)
    stats = server.stop()
    assert run.returncode == 0, run.stderr[-3000:]
    assert stats["acked"] > 0
    assert_audit_counts_what_the_server_acknowledged(run, stats["acked"])


def test_ctrl_c_of_the_embedded_server_wrapper_keeps_the_run_files_and_audit(tmp_path):
    """As ``make headless`` without HOST: the terminal's Ctrl-C reaches the wrapper and Locust at once."""
    prefix = str(tmp_path / "single")
    wrapper = [sys.executable, "-m", "reference_server.around", "--flush-period", "0.1", "--queue-size", "500000",
               "--"]  # fmt: skip
    primary, secondary = os.openpty()

    def own_terminal() -> None:  # a session whose foreground group gets the terminal's Ctrl-C, as in a shell
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    try:
        run = stopped_by_signal(wrapper + locust_command("single", prefix, *PACED), prefix, signal.SIGINT,
                                stdin=secondary, start_new_session=True, preexec_fn=own_terminal)  # fmt: skip
    finally:
        os.close(primary)
        os.close(secondary)
    assert run.returncode == 0, run.stderr[-3000:]
    server_acked = int(re.search(r"reference server stopped: acked (\d+)", run.stderr).group(1))
    assert_audit_counts_what_the_server_acknowledged(run, server_acked)


def test_a_sigint_to_make_headless_s_process_group_keeps_the_run_files_and_prints_locust_s_exit_code(tmp_path):
    """``timeout -s INT 6 make headless`` (a CI cancel): the recipe's shell quit as soon as the run returned, so its
    last lines (``locust exited with code 3``) never came and make said ``Interrupt``. make itself exits by the
    signal (130): GNU make's rule, whatever the command's code."""
    run_dir = tmp_path / "run"
    command = ["make", "--no-print-directory", "headless", "WORKLOAD=single", "USERS=2", "SPAWN_RATE=2", "RUN_TIME=60s",
               "HOST=", f"RUN_DIR={run_dir}", f"VENV={Path(sys.executable).parent.parent}",
               "SERVER_ARGS=--queue-size 100000 --flush-period 0.1 --drop-rate 0.2 --seed 3",
               "ARGS=--target-rps 20 --no-freshness --audit-settle 1"]  # fmt: skip
    make = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip
    wait_until_running(f"{run_dir}/locust", make)
    time.sleep(SIGNAL_AFTER_SECONDS - 1)
    os.killpg(make.pid, signal.SIGINT)
    output, _ = make.communicate(timeout=FINISH_TIMEOUT_SECONDS)
    assert "locust exited with code 3 (" in output and f"run folder: {run_dir}" in output, output[-3000:]
    # make's own code: by the signal (a shell says 130), or its "Error 3" (2) when the recipe ended before make's
    # handler ran: GNU make's rule either way, whatever the command's code.
    assert make.returncode in (-signal.SIGINT, 2), output[-3000:]
    audit = LocustRun(3, output, "", f"{run_dir}/locust").json("audit")
    assert audit["status"] == "lost", audit
    assert all(Path(f"{run_dir}/locust_{suffix}.csv").exists() for suffix in RUN_FILES)


def test_calls_in_flight_at_the_stop_finish_and_are_counted(serve, tmp_path):
    """A slow service: every user has a call in flight when -t runs out; none is cancelled or lost from the counts."""
    server = serve("--latency-ms", "400", "--drop-rate", "0.2", "--seed", "7")
    run = run_locust("single", grpc_host(server), tmp_path, "--audit-allow-loss", users=40, run_time="2s")
    assert run.returncode == 0, run.stderr[-3000:]
    audit = run.json("audit")
    barriers = stored_barriers(server.target, audit["run_id"])
    stats = without_barriers(server.stop(), audit, barriers)
    assert run.requests() == stats["calls"]["WriteLog"], "every call the server saw was recorded by Locust"
    assert (audit["acked"], audit["in_doubt"]) == (stats["acked"], 0)
    assert audit["lost_min"] == audit["lost_max"] == stats["dropped"] > 0, audit
    assert audit["status"] == "lost"


def test_calls_past_their_deadline_are_in_doubt_and_loss_becomes_a_range(serve, tmp_path, capsys):
    server = serve("--latency-ms", "300")
    run = run_locust("single", grpc_host(server), tmp_path, "--grpc-timeout", "0.1", users=5, run_time="2s")
    server.stop()
    assert run.returncode == 1, "DEADLINE_EXCEEDED calls are failures"
    audit = run.json("audit")
    assert audit["in_doubt"] == run.logs()["Aggregated"]["Logs In Doubt"] == run.requests() > 0
    # The reference server drops a call whose client gave up during its latency: none of them was stored.
    assert (audit["status"], audit["lost_min"], audit["lost_max"]) == ("in_doubt", 0, audit["in_doubt"]), audit
    assert "DEADLINE_EXCEEDED" in "".join(run.failures())
    code, output = report([run.prefix, "--max-lost", "0", "--no-charts"]), capsys.readouterr()
    assert code == 1 and "lost (at most)" in output.out + output.err, output
    assert "Lost is a range" in Path(run.prefix).with_name("report.md").read_text()


def test_max_requests_is_exact_when_a_worker_has_no_users(serve, tmp_path):
    server = serve()
    run = run_locust("single", grpc_host(server), tmp_path, *distributed_args(2), "--max-requests", "1000",
                     users=1, run_time="60s", timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.requests() == 1000
    assert run.json("audit")["acked"] == 1000


def test_an_audit_that_cannot_count_fails_the_run_with_its_own_exit_code(serve, tmp_path):
    server = serve()
    prefix = str(tmp_path / "single")
    command = locust_command("single", prefix, "--host", grpc_host(server), "--audit-timeout", "1", "--audit-settle",
                             "0.5", *PACED, users=2, run_time="2s")  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until_running(prefix, process)
    server.kill()
    _, stderr = process.communicate(timeout=FINISH_TIMEOUT_SECONDS)
    assert process.returncode == 4, stderr[-3000:]
    assert "Delivery audit failed (exit code 4)" in stderr


def test_ctrl_c_of_a_distributed_run_collects_every_workers_final_counts_before_the_audit(serve, tmp_path):
    """As ``make distributed``: the terminal's Ctrl-C reaches the master and both workers at once."""
    server = serve()
    prefix = str(tmp_path / "single")
    command = locust_command("single", prefix, "--host", grpc_host(server), *distributed_args(2), *PACED, users=6)
    run = stopped_by_signal(command, prefix, signal.SIGINT, start_new_session=True)
    stats = server.stop()
    assert run.returncode == 0, run.stderr[-3000:]
    audit = assert_audit_counts_what_the_server_acknowledged(run, stats["acked"])
    assert audit["acked"] == stats["acked"], "no worker's last calls are missing"


def signalled_distributed_run(server, tmp_path: Path, order: tuple[str, ...], *args: str, users: int) -> float:
    """A ``--processes 2`` run given SIGINT a few seconds in, by each of ``order`` ('master', 'workers') in turn, 150 ms
    apart; it must end by itself with exit 0 and an ``ok`` audit whose acked is exactly the server's. Returns the
    seconds from the first signal to the exit."""
    prefix = str(tmp_path / "single")
    command = locust_command("single", prefix, "--host", grpc_host(server), *distributed_args(2), *args, users=users,
                             locust=REAL_LOCUST)  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until_running(prefix, process)
    time.sleep(SIGNAL_AFTER_SECONDS - 1)
    workers = psutil.Process(process.pid).children()
    signalled = time.monotonic()
    for turn, who in enumerate(order):
        time.sleep(0.15 if turn else 0)
        for target in [psutil.Process(process.pid)] if who == "master" else workers:
            target.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=FINISH_TIMEOUT_SECONDS)
    ended_in = time.monotonic() - signalled
    run = LocustRun(process.returncode, stdout, stderr, prefix)
    stats = server.stop()
    assert run.returncode == 0, run.stderr[-3000:]
    audit = assert_audit_counts_what_the_server_acknowledged(run, stats["acked"])
    assert audit["acked"] == stats["acked"], "no worker's last calls are missing, and no call came after them"
    return ended_in


def test_a_worker_interrupted_while_the_master_s_stop_is_under_way_still_sends_its_final_counts(serve, tmp_path):
    """Ctrl-C lands on the master first: its stop reaches the workers, whose slow calls are still finishing when
    their own Ctrl-C lands; they must finish that stop and send their counts before they quit."""
    signalled_distributed_run(serve("--latency-ms", "400"), tmp_path, ("master", "workers"), users=20)


def test_a_worker_whose_own_ctrl_c_came_first_sends_its_final_counts_only_when_its_calls_in_flight_ended(
    serve, tmp_path
):
    """Ctrl-C lands on the workers first, then the master's stop reaches them while their slow calls are in flight:
    Locust runs that second stop at once, and it found the users already dying and fired ``test_stop`` without waiting
    for them: the worker's final counts left out the calls in flight, and the master audited on them (``incomplete``:
    the server stored more logs than the run counted). Here every user is in a call when the signals land: the
    server holds every call made from 1 s to 8 s after its first one."""
    server = serve("--stall-at", "1", "--stall-for", "7")
    signalled_distributed_run(server, tmp_path, ("workers", "master"), "--grpc-timeout", "15", users=20)


def test_ctrl_c_to_every_worker_ends_the_test_and_a_worker_given_users_while_it_stops_makes_no_call(serve, tmp_path):
    """A worker that quits first makes its master rebalance the users onto the worker still finishing its calls: that
    one started them, and they called on after its final counts (acked 9 of the server's 66, ``incomplete``, and load
    after the verdict). Here one user on two workers: the one without it quits at once, while the other's call is
    held by the server's stall (from 1 s to 8 s after its first call). The run ends by itself once the last worker
    quit, and soon: its master had waited 2 x (--grpc-timeout + 5) s more, stopping with no worker left to say so."""
    server = serve("--stall-at", "1", "--stall-for", "7")
    ended_in = signalled_distributed_run(server, tmp_path, ("workers",), "--grpc-timeout", "15", users=1)
    assert ended_in < 30, (
        f"the run ended {ended_in:.0f} s after the workers' Ctrl-C (the stall holds a call 6 s at most)"
    )


@pytest.mark.parametrize("drop_rate", ["0", "0.02"])
def test_a_lost_worker_does_not_hang_the_end_of_the_run_and_its_audit_is_never_ok(serve, tmp_path, drop_rate):
    """The killed worker's calls since its last report are counted nowhere: acknowledged is a lower bound, and the
    logs stored beyond it hid the server's drops (``Delivery audit OK: all 522 … unexpected=48`` with 4 dropped)."""
    server = serve("--drop-rate", drop_rate, "--seed", "5")
    prefix = str(tmp_path / "single")
    # Killed at 3 s, the worker is marked missing about 3 s later, before the stop at 8 s: the master must still
    # know its counts are incomplete. Its logs are counted as they are stored, until the count stands still.
    command = locust_command("single", prefix, "--host", grpc_host(server), *distributed_args(2), "--audit-settle",
                             "3", *PACED, users=4, run_time="8s", locust=REAL_LOCUST)  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until_running(prefix, process)
    time.sleep(SIGNAL_AFTER_SECONDS - 1)
    workers = psutil.Process(process.pid).children()
    assert len(workers) == 2, workers
    workers[0].kill()
    started = time.monotonic()
    _, stderr = process.communicate(timeout=FINISH_TIMEOUT_SECONDS)
    assert time.monotonic() - started < 30, "the master waited for a worker that is gone"
    audit = LocustRun(process.returncode, "", stderr, prefix).json("audit")
    barriers = stored_barriers(server.target, audit["run_id"])
    stats = without_barriers(server.stop(), audit, barriers)
    assert audit["persisted"] == stats["stored"] and len(audit["unreported_workers"]) == 1, audit
    assert (float(drop_rate) > 0) == (stats["dropped"] > 0), stats
    # Never ok: below the lower bound the loss is proven (3), above it delivery is unknown (4)
    if audit["persisted"] < audit["acked"]:
        assert (audit["status"], process.returncode) == ("lost", 3), (audit, stderr[-3000:])
        assert 0 < audit["lost_min"] <= stats["dropped"], (audit, stats)
    else:
        assert (audit["status"], process.returncode) == ("incomplete", 4), (audit, stderr[-3000:])
        assert "Delivery audit INCOMPLETE: the final counts of 1 worker(s) never arrived" in stderr, stderr[-3000:]
    assert "acknowledged is a lower bound" in audit["detail"], audit
    # The killed worker's logs since its last report, and their drops, are counted nowhere: no upper bound (it was
    # lost=248..248 with 609 dropped, and --max-lost 300 passed)
    assert audit["lost_max"] is None and f"lost={audit['lost_min']}..? " in stderr, (audit, stderr[-3000:])


def running(process: psutil.Process) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_forked_workers_stop_their_load_within_seconds_of_their_master_s_sigkill(serve, tmp_path):
    """Before: the two workers of a SIGKILLed ``--processes`` master wrote on for minutes (Locust tells a forked
    worker nothing, and waits 60 s for a heartbeat)."""
    server = serve()
    command = [*LOCUST, "-f", "locustfiles/single.py", "--headless", *distributed_args(2), "-u", "4", "-r", "4",
               "-t", "60s", "--csv", str(tmp_path / "single"), "--host", grpc_host(server), *PACED]  # fmt: skip
    log = tmp_path / "stderr.log"
    with open(log, "w") as stderr:
        master = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while "All users spawned" not in log.read_text() or not server.stats().get("acked"):
            assert master.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
        workers = psutil.Process(master.pid).children()
        assert len(workers) == 2, workers
        master.kill()
        master.wait(10)
        killed = time.monotonic()
        while any(running(worker) for worker in workers):
            assert time.monotonic() - killed < 30, f"workers run on 30 s after the SIGKILL: {log.read_text()[-3000:]}"
            time.sleep(0.1)
        gone_in = time.monotonic() - killed
        stored = [server.stats()["acked"]]  # the counters are rewritten after each flush: the last calls come late
        while len(stored) < 3 or stored[-1] != stored[-2]:
            assert len(stored) < 10, f"the service's count still grows after the workers are gone: {stored}"
            time.sleep(1)
            stored.append(server.stats()["acked"])
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(master.pid, signal.SIGKILL)
    assert gone_in < 15, f"the workers took {gone_in:.1f} s to stop"
    output = log.read_text()
    assert output.count("This worker lost its master (its parent process (pid") == 2, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
