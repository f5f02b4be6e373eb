"""An answer the client cannot parse (status OK, bytes that are not the RPC's response) is one failed request with its
logs in doubt, for every RPC; the user still stops when told; an audit that cannot read QueryLog fails fast."""

from __future__ import annotations

import pytest
from hostile_answers import GarbageAnswers
from locust_runs import PACED, logged_seconds, run_locust

from grpc_user import LogClient
from grpc_user.calls import BATCH_WRITE_LOG, QUERY_LOG, WRITE_LOG

AUDIT_ERROR_EXIT_CODE = 4


WRITES = [("single", WRITE_LOG, 1), ("batch", BATCH_WRITE_LOG, 5)]


@pytest.mark.parametrize(("workload", "rpc", "logs_per_call"), WRITES)
@pytest.mark.slow
def test_an_unreadable_write_answer_is_one_failed_request_with_its_logs_in_doubt_and_the_run_stops(
        tmp_path, workload, rpc, logs_per_call):  # fmt: skip
    with GarbageAnswers(garbage=[rpc]) as server:
        run = run_locust(workload, server.target, tmp_path, "--batch-size", "5", "--audit-timeout", "2", *PACED,
                         users=3, run_time="2s", timeout=60)  # fmt: skip
    elapsed = logged_seconds(run.stderr, "Ramping to", "Shutting down (exit code")
    assert elapsed < 2 + 15, f"the run took {elapsed:.1f} s to stop"
    assert "Traceback" not in run.stderr and "DecodeError" not in run.stderr, run.stderr[-3000:]
    # an audit that cannot tell (see below): 4, over the failed requests' 1
    assert run.returncode == AUDIT_ERROR_EXIT_CODE, run.stderr[-3000:]
    requests = run.requests(rpc)
    assert requests > 0 and run.failures() == {f"INTERNAL: unreadable {rpc}Response (N bytes)": requests}
    logs = run.logs()[rpc]
    assert logs["Requests"] == requests and logs["Logs In Doubt"] == logs["Logs Sent"] == requests * logs_per_call
    audit = run.json("audit")
    # Nothing was stored and the logs in doubt may never have been queued. With BatchWriteLog unreadable the audit's
    # barrier (a WriteLog) was acknowledged and never stored either; with WriteLog unreadable the barrier's answer is
    # too (refused): either way nothing proves they will not be (unsettled).
    in_doubt = requests * logs_per_call
    assert (audit["status"], audit["acked"], audit["in_doubt"], audit["lost_max"]) == ("unsettled", 0, in_doubt,
                                                                                       in_doubt)  # fmt: skip


@pytest.mark.slow
def test_an_unreadable_query_answer_fails_the_query_and_the_audit_quickly_with_its_own_exit_code(tmp_path):
    with GarbageAnswers(garbage=[QUERY_LOG]) as server:
        run = run_locust("mixed", server.target, tmp_path, "--mix", "write=1,batch=0,query=1", "--audit-timeout", "60",
                         *PACED, users=2, run_time="2s", timeout=60)  # fmt: skip
    assert run.returncode == AUDIT_ERROR_EXIT_CODE, run.stderr[-3000:]
    elapsed = logged_seconds(run.stderr, "Ramping to", "Shutting down (exit code")
    assert elapsed < 2 + 15, f"the audit took {elapsed:.1f} s to give up on answers it cannot read"
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    failures = run.failures()
    assert failures and all(error == "INTERNAL: unreadable QueryLogResponse (N bytes)" for error in failures), failures
    audit = run.json("audit")
    assert audit["status"] == "error" and "unreadable QueryLogResponse" in audit["detail"]
    acked = audit["acked"] + audit["in_doubt"]
    assert (audit["persisted"], audit["lost_min"], audit["lost_max"]) == (0, 0, acked), "nothing counted: all unknown"
    assert f"persisted=0 lost=0..{acked} " in run.stderr, "an audit that could not count claims no count"
    assert "Delivery audit failed (exit code 4): INTERNAL: unreadable QueryLogResponse" in run.stderr


def test_the_plain_client_reports_an_unreadable_answer_as_a_failed_result():
    with GarbageAnswers() as server, LogClient(server.target, timeout=3) as client:
        write, batch, query = client.write_log("x"), client.batch_write_logs([{"message": "y"}]), client.query_logs()
        health = client.health()
    assert (write.success, write.status) == (False, "INTERNAL")
    assert (batch.success_count, batch.error_count) == (0, 1)
    assert (query.success, query.status) == (False, "INTERNAL")
    assert health.serving, "the probe's answer is not read: a LogService answered"
