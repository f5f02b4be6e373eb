"""The delivery audit in real headless Locust runs against the reference server (a few seconds each)."""

from __future__ import annotations

import threading
import time

import pytest
from audit_barriers import stored_barriers, without_barriers
from conftest import grpc_host
from locust_runs import free_port, run_locust

from grpc_user import LogClient

# Real Locust runs or processes of several seconds each: make test runs them, make test-fast does not.
pytestmark = pytest.mark.slow

LOST_EXIT_CODE = 3
UNKNOWN_EXIT_CODE = 4


def test_without_faults_every_acknowledged_log_is_found_and_the_run_passes(serve, tmp_path):
    server = serve()
    run = run_locust("single", grpc_host(server), tmp_path, "--max-requests", "300")
    stats = server.stop()
    assert run.returncode == 0, run.stderr
    audit = run.json("audit")
    assert audit["status"] == "ok" and audit["detail"] == ""
    assert audit["acked"] == audit["persisted"] == stats["acked"] == stats["stored"] == 300
    assert (audit["lost"], audit["unexpected"]) == (0, 0)
    assert audit["run_id"] == run.json("run")["run_id"]
    assert run.json("run")["audit"] == audit


def test_logs_the_server_dropped_are_reported_lost_exactly_and_fail_the_run(serve, tmp_path):
    server = serve("--drop-rate", "0.3", "--seed", "11")
    run = run_locust("single", grpc_host(server), tmp_path, "--max-requests", "300")
    audit = run.json("audit")
    barriers = stored_barriers(server.target, audit["run_id"])
    stats = without_barriers(server.stop(), audit, barriers)
    assert stats["dropped"] > 0
    assert (audit["status"], audit["lost"], audit["unexpected"]) == ("lost", stats["dropped"], 0)
    assert (audit["acked"], audit["persisted"]) == (stats["acked"], stats["stored"])
    assert run.returncode == LOST_EXIT_CODE, run.stderr
    assert f"Delivery audit LOST: {stats['dropped']} of 300 acknowledged logs were lost (exit code 3" in run.stderr
    assert f"(run_id={audit['run_id']} acked={audit['acked']} in_doubt=0" in run.stdout + run.stderr


def test_audit_allow_loss_reports_lost_logs_without_failing_the_run(serve, tmp_path):
    server = serve("--drop-rate", "0.3", "--seed", "11")
    run = run_locust("single", grpc_host(server), tmp_path, "--max-requests", "300", "--audit-allow-loss")
    assert run.returncode == 0, run.stderr
    audit = run.json("audit")
    barriers = stored_barriers(server.target, audit["run_id"])
    stats = without_barriers(server.stop(), audit, barriers)
    assert (audit["status"], audit["lost"]) == ("lost", stats["dropped"])
    assert stats["dropped"] > 0
    assert "Delivery audit LOST" in run.stdout + run.stderr


def test_no_audit_writes_a_skipped_audit_and_with_no_freshness_never_queries_the_service(serve, tmp_path):
    server = serve()
    run = run_locust("single", grpc_host(server), tmp_path, "--max-requests", "300", "--no-audit", "--no-freshness")
    stats = server.stop()
    assert run.returncode == 0, run.stderr
    audit = run.json("audit")
    assert (audit["status"], audit["detail"], audit["acked"]) == ("skipped", "--no-audit", 300)
    assert (audit["persisted"], audit["lost"], audit["unexpected"]) == (0, 0, 0)
    assert audit["lost_max"] is None, "nothing was counted: nothing bounds the loss (it said 0..0)"
    assert stats["calls"].get("QueryLog", 0) == 0
    assert stats["calls"]["WriteLog"] == 300


def test_partial_batches_audit_only_the_entries_the_server_accepted(serve, tmp_path):
    server = serve("--queue-size", "150", "--flush-batch", "50", "--flush-period", "0.05")
    run = run_locust("batch", grpc_host(server), tmp_path, "--batch-size", "100", "--max-requests", "300",
                     users=10, run_time="60s")  # fmt: skip
    stats = server.stop()
    assert stats["rejected_queue_full"] > 0, "the queue never filled: no partial batches to audit"
    assert run.returncode == 1, "refused entries are failures (Locust's exit code 1), not lost logs"
    audit = run.json("audit")
    assert audit["status"] == "ok"
    assert audit["acked"] == audit["persisted"] == stats["acked"] == stats["stored"]
    assert (audit["lost"], audit["unexpected"]) == (0, 0)
    assert audit["acked"] == run.logs()["BatchWriteLog"]["Logs Acked"]


def test_a_service_still_storing_other_logs_is_waited_for_and_never_called_lost(serve, tmp_path):
    """Issue 20's busy service, scaled down: storage at 1,000 logs/s behind an earlier backlog and another writer
    (2,000 logs/s) keeps this run's count flat for longer than --audit-settle, though every log of it comes."""
    server = serve("--store-rate", "1000")
    writing = threading.Event()

    def another_team() -> None:
        with LogClient(server.target) as client:
            client.batch_write_logs([{"message": "an earlier test's log"}] * 5000)  # 5 s of storage
            while not writing.wait(0.1):
                client.batch_write_logs([{"message": "another team's log"}] * 200)

    other = threading.Thread(target=another_team, daemon=True)
    other.start()
    try:
        run = run_locust("single", grpc_host(server), tmp_path, "--max-requests", "200", "--audit-timeout", "2.5",
                         users=2)  # fmt: skip
    finally:
        writing.set()
        other.join(10)
    audit = run.json("audit")
    assert audit["status"] == "unsettled", audit
    assert (audit["lost_min"], audit["lost_max"]) == (0, audit["acked"] - audit["persisted"]), audit
    assert run.returncode == UNKNOWN_EXIT_CODE, run.stderr[-2000:]
    assert "Delivery audit UNSETTLED" in run.stderr and "LOST" not in run.stderr
    assert "still storing" in audit["detail"] and "raise --audit-timeout" in audit["detail"], audit["detail"]
    deadline = time.monotonic() + 60
    with LogClient(server.target) as client:
        while client.query_logs(run_id=audit["run_id"], limit=1).total_count < audit["acked"]:
            assert time.monotonic() < deadline, "the logs the audit waited for never came"
            time.sleep(0.5)
    assert audit["acked"] == 200 and server.stop()["dropped"] == 0


def test_a_run_id_the_service_already_stores_logs_of_is_numbered_on_and_a_real_loss_is_still_lost(serve, tmp_path):
    """Two headless runs with ``--run-id dup``: the second counted the first one's logs as its own and said ``OK ...
    unexpected=325``, exit 0, while the server had dropped ~772 of its logs. Earlier logs under 'dup' and 'dup.2'
    (another process's tests) make this test 'dup.3', as the web UI numbers a reused id within one process."""
    server = serve("--drop-rate", "0.3", "--seed", "11", "--count-by", "run_id")
    with LogClient(server.target) as client:
        client.batch_write_logs([{"message": "an earlier run's log", "run_id": "dup"}] * 400)
        client.batch_write_logs([{"message": "an earlier run's log", "run_id": "dup.2"}] * 50)
        while client.query_logs(run_id="dup.2", limit=1).total_count == 0:
            time.sleep(0.05)
        earlier = client.query_logs(run_id="dup", limit=1).total_count
        later = client.query_logs(run_id="dup.2", limit=1).total_count
    run = run_locust("single", grpc_host(server), tmp_path, "--run-id", "dup", "--max-requests", "300")
    audit = run.json("audit")
    assert f"run id 'dup' already has {earlier:,} logs in the service, 'dup.2' {later:,}: this test is 'dup.3'" in (
        run.stderr
    ), run.stderr[-3000:]
    assert audit["run_id"] == run.json("run")["run_id"] == "dup.3", audit
    assert "run id dup.3: every log of this test carries metadata run_id=dup.3" in run.stderr
    assert (audit["status"], audit["unexpected"], run.returncode) == ("lost", 0, LOST_EXIT_CODE), audit
    stored = server.stop()["by_metadata"]["stored"]
    assert audit["acked"] == 300 and audit["persisted"] == stored["dup.3"] == 300 - audit["lost"], (audit, stored)


def test_a_listed_replica_no_call_reached_needs_no_barrier_and_a_real_loss_is_lost_not_unsettled(serve, tmp_path):
    """``ipv4:127.0.0.1:A,127.0.0.1:<nothing listens>`` with drops on A: the audit waited for a barrier on the dead
    address and said ``UNSETTLED ... no barrier could be written to ipv4:127.0.0.1:1``. No call of the run started
    there (grpc's per-server counts), so it holds none of the run's logs."""
    server = serve("--drop-rate", "0.2", "--seed", "11")
    dead = f"127.0.0.1:{free_port()}"
    run = run_locust("single", f"ipv4:{server.target},{dead}", tmp_path, "--grpc-lb", "round_robin",
                     "--max-requests", "300", "--audit-timeout", "20")  # fmt: skip
    audit = run.json("audit")
    assert (audit["status"], run.returncode) == ("lost", LOST_EXIT_CODE), run.stderr[-3000:]
    by_peer = {peer["peer"]: peer for peer in audit["barriers_by_peer"]}
    assert by_peer[f"ipv4:{dead}"] == {"peer": f"ipv4:{dead}", "written": 0, "stored": 0, "refused": "",
                                       "reached": False}, by_peer  # fmt: skip
    assert by_peer[f"ipv4:{server.target}"]["reached"] and by_peer[f"ipv4:{server.target}"]["stored"] >= 1, by_peer
    assert f"no call of the run reached ipv4:{dead}: no barrier needed there" in audit["detail"], audit["detail"]
    barriers = stored_barriers(server.target, audit["run_id"])
    stats = without_barriers(server.stop(), audit, barriers)
    assert audit["lost_min"] == audit["lost_max"] == stats["dropped"] > 0, (audit, stats)
