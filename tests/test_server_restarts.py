"""The reference server's stop behaviours (--on-stop flush|drop-queue) and its restart on the same port."""

from __future__ import annotations

import subprocess
import sys

import pytest

from grpc_user import LogClient
from reference_server import ReferenceServer, ServerSettings
from reference_server.process import start_server_process

# Storage slower than the writes: a backlog stays queued, as behind the real service's MongoDB under load.
BACKLOG = {"flush_batch": 100, "flush_period": 60.0, "queue_size": 100000, "store_rate": 400.0}


def write_backlog(target: str, run_id: str, count: int = 1000) -> int:
    with LogClient(target) as client:
        return client.batch_write_logs([{"message": f"m{i}", "run_id": run_id} for i in range(count)]).success_count


def stored(target: str, run_id: str) -> int:
    with LogClient(target) as client:
        return client.query_logs(run_id=run_id, limit=1).total_count


def test_drop_queue_stores_the_batch_being_built_and_drops_the_rest_of_the_queue(tmp_path):
    database = str(tmp_path / "logs.db")
    server = ReferenceServer(ServerSettings(port=0, db=database, on_stop="drop-queue", **BACKLOG)).start()
    acked = write_backlog(server.target, "dropped")
    final = server.stop()
    assert acked == final.acked == 1000
    assert final.dropped_on_stop > 0 and final.stored >= BACKLOG["flush_batch"]
    assert final.stored + final.dropped_on_stop == final.acked
    with ReferenceServer(ServerSettings(port=0, db=database)) as again:
        assert stored(again.target, "dropped") == final.stored


def test_flush_stores_every_queued_log_at_a_stop(tmp_path):
    server = ReferenceServer(ServerSettings(port=0, on_stop="flush", **{**BACKLOG, "store_rate": 4000.0})).start()
    acked = write_backlog(server.target, "kept")
    final = server.stop()
    assert acked == final.acked == final.stored == 1000 and final.dropped_on_stop == 0


def test_a_restart_serves_again_on_the_same_port_with_the_same_store_and_counters():
    server = ReferenceServer(ServerSettings(port=0, on_stop="drop-queue", **BACKLOG)).start()
    target = server.target
    before = write_backlog(target, "deploy")
    server.restart()
    assert server.target == target
    after = write_backlog(target, "deploy", 50)
    final = server.stop()
    assert final.restarts == 1 and final.acked == before + after == 1050
    assert final.stored + final.dropped_on_stop == final.acked and final.dropped_on_stop > 0


@pytest.mark.slow
def test_sighup_restarts_the_server_process_and_the_restart_command_waits_for_it(tmp_path):
    server = start_server_process("--on-stop", "drop-queue", "--db", str(tmp_path / "logs.db"), "--flush-batch", "100",
                                  "--flush-period", "60", "--store-rate", "100")  # fmt: skip
    try:
        # 10 s of backlog at 100 logs/s: the restart command's own start (an interpreter) drained all of 2.5 s (at
        # 400 logs/s) beside a CPU hog, leaving nothing to drop
        acked = write_backlog(server.target, "hup")
        env = {"REFERENCE_SERVER_PID": str(server.pid), "REFERENCE_SERVER_STATS_FILE": str(server.stats_file)}
        done = subprocess.run([sys.executable, "-m", "reference_server.restart"], capture_output=True, text=True,
                              timeout=60, env={**env, "PATH": "/usr/bin:/bin"})  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "restarted" in done.stdout
        middle = server.stats()
        assert middle["restarts"] == 1 and middle["dropped_on_stop"] > 0
        assert stored(server.target, "hup") == middle["stored"] == acked - middle["dropped_on_stop"]
    finally:
        final = server.stop()
    assert final["restarts"] == 1


@pytest.mark.slow
def test_the_restart_command_outside_around_is_one_line_and_exit_2():
    done = subprocess.run([sys.executable, "-m", "reference_server.restart"], capture_output=True, text=True,
                          timeout=30, env={"PATH": "/usr/bin:/bin"})  # fmt: skip
    assert done.returncode == 2 and "REFERENCE_SERVER_PID" in done.stderr and done.stderr.count("\n") == 1


@pytest.mark.parametrize("value", ["drop", "FLUSH"])
@pytest.mark.slow
def test_a_bad_on_stop_is_one_line_and_exit_2(value):
    done = subprocess.run([sys.executable, "-m", "reference_server", "--on-stop", value], capture_output=True,
                          text=True, timeout=30)  # fmt: skip
    assert done.returncode == 2 and "--on-stop" in done.stderr and "drop-queue" in done.stderr
    assert done.stderr.strip().count("\n") == 0
