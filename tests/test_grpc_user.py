"""GrpcUser in real headless Locust runs against the reference server (subprocesses, a few seconds each)."""

from __future__ import annotations

import re

import pytest
from conftest import ForkedServerProcess, grpc_host
from forkserver_pool import request_forkservers
from locust_runs import PACED, run_locust, shared_run

# Real Locust runs or processes of several seconds each: make test runs them, make test-fast does not.
pytestmark = pytest.mark.slow


def served_run(*server_args: str, args: tuple[str, ...] = (), keep_counts: bool = True, **run: object):
    """A ``make`` for ``shared_run``: a reference server (as conftest's ``serve`` starts it) and one Locust run against
    it (``args`` its options, ``run`` run_locust's keywords); the run and the server's counts at its stop (none when
    not ``keep_counts``: the server is killed, calls it still holds are not waited for)."""

    def make(folder):
        request_forkservers()  # a module fixture comes before the autouse fixture that asks for them
        server = ForkedServerProcess("--flush-period", "0.1", "--queue-size", "100000", *server_args)
        try:
            done = run_locust("single", grpc_host(server), folder, *args, **run)
        finally:
            stats = server.stop() if keep_counts else server.kill()
        return done, stats or {}

    return make


@pytest.fixture(scope="module")
def six_hundred_calls(tmp_path_factory, worker_id):
    """single, 600 calls by 10 users, the run id generated: its counts, and the run id it printed and wrote."""
    make = served_run(args=("--max-requests", "600"), users=10, run_time="30s")
    return shared_run(tmp_path_factory, worker_id, "six-hundred-calls", make)


@pytest.fixture(scope="module")
def a_full_queue(tmp_path_factory, worker_id):
    """300 calls of 30 ms against a queue of 50 that is never flushed within the test, however long a busy machine
    takes to start Locust (a flush at 5 s let 20 more in): 50 acknowledged, 250 refused. --max-requests ends it: the
    default 3 s ended it after 299 calls beside two CPU hogs (5 users need 1.8 s for 300 calls of 30 ms)."""
    make = served_run("--queue-size", "50", "--flush-period", "3600", "--flush-batch", "100000", "--latency-ms", "30",
                      args=("--no-audit", "--no-freshness", "--max-requests", "300"), run_time="60s")  # fmt: skip
    return shared_run(tmp_path_factory, worker_id, "a-full-queue", make)


@pytest.fixture(scope="module")
def past_the_deadline(tmp_path_factory, worker_id):
    """20 calls cut at a 0.5 s deadline by a server that takes 3 s (--max-requests ends it: 5 users need 2 s, too
    close to a 3 s run on a busy machine). 0.5 s is also the target's preflight deadline, which holds on a busy
    machine (0.1 s did not)."""
    make = served_run("--latency-ms", "3000", args=("--grpc-timeout", "0.5", "--no-audit", "--max-requests", "20"),
                      keep_counts=False, run_time="60s")  # fmt: skip
    return shared_run(tmp_path_factory, worker_id, "past-the-deadline", make)


def test_every_call_fires_one_request_event_and_is_counted_as_one_log(six_hundred_calls):
    run, stats = six_hundred_calls
    assert run.returncode == 0, run.stderr
    assert run.requests("WriteLog") == run.requests() == 600
    assert stats["calls"]["WriteLog"] == 600
    assert run.logs()["WriteLog"] == {"Requests": 600, "Logs Sent": 600, "Logs Acked": 600, "Logs Rejected": 0,
                                      "Logs In Doubt": 0}  # fmt: skip


def test_batch_logs_are_counted_per_entry_and_match_what_the_server_acknowledged(serve, tmp_path):
    server = serve("--queue-size", "100000")  # room for every log: this test is about exact counts
    run = run_locust("batch", grpc_host(server), tmp_path, "--batch-size", "7", "--max-requests", "200")
    stats = server.stop()
    assert run.returncode == 0, run.stderr
    assert run.requests("BatchWriteLog") == 200
    logs = run.logs()["BatchWriteLog"]
    assert logs["Logs Sent"] == 1400 == logs["Logs Acked"] == stats["acked"]


def test_partial_batches_count_accepted_entries_exactly_and_fail_as_partial_batch(serve, tmp_path):
    server = serve("--queue-size", "150", "--flush-period", "0.05", "--flush-batch", "50")
    run = run_locust("batch", grpc_host(server), tmp_path, "--batch-size", "100", "--max-requests", "300",
                     users=10, run_time="60s")  # fmt: skip
    stats = server.stop()
    logs = run.logs()["BatchWriteLog"]
    assert logs["Logs Acked"] == stats["acked"]
    assert logs["Logs Sent"] - logs["Logs Acked"] == stats["rejected_queue_full"] > 0
    failures = run.failures()
    assert any(error.startswith("PARTIAL_BATCH: N logs failed to enqueue") for error in failures), failures
    assert all(re.match(r"^(PARTIAL_BATCH|APP_FAILURE): ", error) for error in failures), failures


def test_queue_full_is_recorded_as_resource_exhausted(a_full_queue):
    run, _ = a_full_queue
    assert run.failures() == {"RESOURCE_EXHAUSTED: log queue is full": 250}
    assert run.logs()["WriteLog"]["Logs Acked"] == 50


def test_unavailable_errors_are_grouped_by_status(serve, tmp_path):
    server = serve("--error-rate", "0.5", "--seed", "7")
    # The server counts every error it injects: no freshness probe, whose queries it would fail too.
    run = run_locust("single", grpc_host(server), tmp_path, "--max-requests", "400", "--no-audit", "--no-freshness")
    stats = server.stop()
    failures = run.failures()
    assert list(failures) == [next(iter(failures))] and next(iter(failures)).startswith("UNAVAILABLE: ")
    assert sum(failures.values()) == stats["injected_errors"]
    assert 120 < stats["injected_errors"] < 280


def test_deadline_exceeded_is_recorded_when_the_server_is_slower_than_grpc_timeout(past_the_deadline):
    run, _ = past_the_deadline
    failures = run.failures()
    assert set(failures) == {"DEADLINE_EXCEEDED: Deadline Exceeded"}, failures
    assert run.requests() == sum(failures.values()) > 0


def test_fifty_users_against_100ms_latency_overlap_their_calls(serve, tmp_path):
    """50 users of 500 ms calls make ~100 calls/s when calls overlap and 2/s when one blocks the hub; the bar sits
    far from both, at a rate that the reference server serves even with both cores busy, so a busy machine cannot
    flip it (50 users of 100 ms calls asked it for 500 calls/s: it served 31 at load 11; speed is ``make bench``'s)."""
    server = serve("--latency-ms", "500")
    run = run_locust("single", grpc_host(server), tmp_path, "--no-audit", users=50, spawn_rate=1000, run_time="4s")
    server.kill()
    rate = float(run.stats()["Aggregated"]["Requests/s"])
    assert rate >= 25, f"{rate:.0f} calls/s from 50 users of 500 ms calls: calls block the gevent hub"


def test_max_requests_stops_after_exactly_that_many_calls(serve, tmp_path):
    """Every RPC of the mixed workload takes its permit: batches of 10 logs, not the default 100 (whose 21,000 logs
    the server stored 3.4 s after the stop: 14 s and 5 CPU-s a run, 5 s and 2.3 with 2,800 logs)."""
    server = serve("--queue-size", "100000")
    run = run_locust("mixed", grpc_host(server), tmp_path, "--max-requests", "1000", "--batch-size", "10", users=20,
                     run_time="60s")  # fmt: skip
    server.stop()
    assert run.returncode == 0, run.stderr
    assert run.requests() == 1000


def test_target_rps_paces_the_users_to_the_requested_total_rate(serve, tmp_path):
    server = serve()
    run = run_locust("single", grpc_host(server), tmp_path, "--target-rps", "100", users=10, run_time="4s")
    server.stop()
    rate = float(run.stats()["Aggregated"]["Requests/s"])
    assert rate <= 115, rate
    # Reached once every user runs, over the history's rows with all 10 users (the run's own mean counts the spawn,
    # which a busy machine stretches: 71 calls/s beside a CPU hog). A row's second is when the writer woke, a second
    # late now and then (100, 200, 300, 400 calls at :44, :45, :46, :48): the span is known to a second.
    rows = [row for row in run.rows("stats_history") if row["Name"] == "Aggregated" and row["User Count"] == "10"]
    calls = int(rows[-1]["Total Request Count"]) - int(rows[0]["Total Request Count"])
    seconds = int(rows[-1]["Timestamp"]) - int(rows[0]["Timestamp"])
    assert seconds >= 2 and calls / (seconds - 1) >= 85, (calls, seconds)


def test_mix_weights_choose_the_calls_and_queries_are_named_by_shape(serve, tmp_path):
    server = serve()
    only_queries = run_locust("mixed", grpc_host(server), tmp_path, "--mix", "write=1,batch=0,query=3", *PACED,
                              run_time="2s")  # fmt: skip
    server.stop()
    names = set(only_queries.stats()) - {"Aggregated"}
    assert names <= {"WriteLog", "QueryLog:trace", "QueryLog:metadata", "QueryLog:time-range"}
    assert {"WriteLog", "QueryLog:metadata", "QueryLog:time-range"} <= names


def test_run_id_and_message_bytes_reach_the_stored_logs(serve, tmp_path):
    from grpc_user import LogClient

    server = serve()
    run = run_locust("single", grpc_host(server), tmp_path, "--run-id", "run-42", "--message-bytes", "300",
                     "--max-requests", "50")  # fmt: skip
    assert run.returncode == 0, run.stderr
    with LogClient(server.target) as client:
        stored = client.query_logs(run_id="run-42", limit=5)
    server.stop()
    assert stored.total_count == 50
    assert {len(log["message"]) for log in stored.logs} == {300}
    assert run.json("run")["run_id"] == "run-42"


def test_generated_run_id_is_printed_and_written(six_hundred_calls):
    run, _ = six_hundred_calls
    run_id = run.json("run")["run_id"]
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", run_id)
    assert f"run id {run_id}" in run.stderr


# Each refusal's line is test_command_line_refusals.py's (in process); here, what a real locust process makes of it,
# for a suite option, one of Locust's own and a host.
@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--batch-size", "0", "--batch-size='0' is not valid; accepted: a whole number from 1 to 1000"),
        ("--host", "http://127.0.0.1:1", "--host='http://127.0.0.1:1' is not valid; accepted: host:port"),
        ("-u", "-1", "-u/--users=-1 is not valid; accepted: a whole number >= 0"),
    ],
)
def test_invalid_options_exit_2_with_one_line_naming_option_value_and_accepted(tmp_path, option, value, message):
    args = [option, value] if option not in ("--host", "-u") else []
    host = value if option == "--host" else "grpc://127.0.0.1:9"
    run = run_locust("single", host, tmp_path, *args, users=int(value) if option == "-u" else 5, spawn_rate=1)
    assert run.returncode == 2
    errors = [line for line in run.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and message in errors[0], run.stderr
    assert "Traceback" not in run.stderr
    assert list(tmp_path.iterdir()) == [], "a test that never started leaves none of Locust's empty CSV files"


def test_unreachable_target_fails_fast_with_one_line_naming_it(tmp_path):
    run = run_locust("single", "grpc://127.0.0.1:9", tmp_path, timeout=15)
    assert run.returncode == 1
    assert "locust: error: target grpc://127.0.0.1:9 is not serving the log service: UNAVAILABLE" in run.stderr
    assert "Traceback" not in run.stderr
    assert list(tmp_path.iterdir()) == [], "a test that never started leaves none of Locust's empty CSV files"


def test_failed_calls_latency_is_kept_apart_from_successful_calls(a_full_queue):
    run, _ = a_full_queue
    rows = {(row["Name"], row["Outcome"]): row for row in run.rows("latency")}
    assert set(rows) == {("WriteLog", "OK"), ("WriteLog", "RESOURCE_EXHAUSTED"), ("Aggregated", "OK"),
                         ("Aggregated", "RESOURCE_EXHAUSTED")}  # fmt: skip
    assert int(rows[("WriteLog", "OK")]["Count"]) == 50
    refused = run.failures()["RESOURCE_EXHAUSTED: log queue is full"]
    assert int(rows[("WriteLog", "RESOURCE_EXHAUSTED")]["Count"]) == 250 == refused
    assert "Latency by outcome" in run.stderr


def test_deadline_exceeded_latency_is_the_deadline_not_the_server_time(past_the_deadline):
    """The latency of a call cut at its 0.5 s deadline is 0.5 s and a little (a busy machine's scheduling), far from
    the 3 s the server would have taken."""
    run, _ = past_the_deadline
    row = {row["Outcome"]: row for row in run.rows("latency")}["DEADLINE_EXCEEDED"]
    assert int(row["Count"]) == 20
    assert 490 <= float(row["50%"]) <= 1500
