"""The reference server: the real service's statuses, QueryLog filters, durability, faults, probes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from locust_runs import python_m

from grpc_user import LogClient
from grpc_user.pb import log_service_pb2 as pb
from grpc_user.pb import log_service_pb2_grpc as pb_grpc
from reference_server import ReferenceServer, ServerSettings
from reference_server.process import start_server_process
from reference_server.stats import ServerStats

ROOT = Path(__file__).resolve().parent.parent


def server(**settings) -> ReferenceServer:
    return ReferenceServer(ServerSettings(port=0, **{"flush_period": 0.05, "queue_size": 100000, **settings}))


def stored(client: LogClient, count: int, **filters) -> int:
    deadline = time.monotonic() + 5
    while (total := client.query_logs(limit=1, **filters).total_count) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return total


def stub_for(running: ReferenceServer):
    channel = grpc.insecure_channel(running.target)
    return channel, pb_grpc.LogServiceStub(channel)


def test_write_without_entry_and_empty_batch_are_invalid_argument():
    with server() as running:
        channel, stub = stub_for(running)
        with pytest.raises(grpc.RpcError) as no_entry:
            stub.WriteLog(pb.WriteLogRequest())
        with pytest.raises(grpc.RpcError) as empty:
            stub.BatchWriteLog(pb.BatchWriteLogRequest())
        channel.close()
    assert no_entry.value.code() == empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_acknowledged_write_answers_a_queued_id_at_once_and_is_stored_after_the_flush():
    with server(flush_period=0.3, flush_batch=1000) as running, LogClient(running.target) as client:
        result = client.write_log("soon", run_id="later")
        assert result.log_id.startswith("queued-")
        assert client.query_logs(run_id="later").total_count == 0
        assert stored(client, 1, run_id="later") == 1


def test_full_queue_answers_resource_exhausted_and_partial_batch_status_ok():
    with server(queue_size=3, flush_period=60, flush_batch=1000) as running:
        channel, stub = stub_for(running)
        answer = stub.BatchWriteLog(pb.BatchWriteLogRequest(log_entries=[pb.LogEntry(message="m")] * 5))
        with pytest.raises(grpc.RpcError) as full:
            stub.WriteLog(pb.WriteLogRequest(log_entry=pb.LogEntry(message="m")))
        channel.close()
        stats = running.stats()
    assert (answer.success, answer.error_message, len(answer.log_ids)) == (False, "2 logs failed to enqueue", 3)
    assert full.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and full.value.details() == "log queue is full"
    assert (stats.acked, stats.rejected_queue_full) == (3, 3)


def test_batches_above_max_batch_are_refused_with_invalid_argument():
    with server(max_batch=10) as running, LogClient(running.target, max_batch_size=11) as client:
        result = client.batch_write_logs([{"message": "m"}] * 11)
    assert result.results[0].status == "INVALID_ARGUMENT"
    assert "exceeds the maximum of 10" in result.errors[0]


def test_requests_above_the_message_size_limit_are_refused():
    with server(max_message_bytes=4096) as running, LogClient(running.target) as client:
        assert client.write_log("x" * 5000).status == "RESOURCE_EXHAUSTED"
        assert client.write_log("x" * 100).success


@pytest.fixture(scope="module")
def filled():
    """Twelve logs over three services, two levels, two traces, one hour apart."""
    with server() as running, LogClient(running.target) as client:
        client.batch_write_logs([
            {"message": f"m{index}", "service_name": f"svc-{index % 3}", "level": "ERROR" if index % 2 else "INFO",
             "trace_id": f"trace-{index % 2}", "timestamp": f"2024-08-30T{index:02d}:00:00Z",
             "tenant": "a" if index < 6 else "b", "run_id": "filters"}
            for index in range(12)
        ])  # fmt: skip
        assert stored(client, 12, run_id="filters") == 12
        yield client


@pytest.mark.parametrize(
    ("filters", "messages"),
    [
        ({"service_name": "svc-1"}, []),  # the real service's quirk: DEBUG logs only, and these are INFO and ERROR
        ({"level": "ERROR", "service_name": "svc-1"}, ["m7", "m1"]),
        ({"trace_id": "trace-0", "tenant": "b"}, ["m10", "m8", "m6"]),
        ({"start_time": "2024-08-30T03:00:00Z", "end_time": "2024-08-30T05:00:00+00:00"}, ["m5", "m4", "m3"]),
        ({"start_time": "not a time", "tenant": "a", "level": "INFO"}, ["m4", "m2", "m0"]),
        ({"metadata_filters": {"tenant": "a", "run_id": "filters"}, "limit": 2, "offset": 1}, ["m4", "m3"]),
    ],
)
def test_every_query_filter_applies_newest_first(filled, filters, messages):
    result = filled.query_logs(**filters)
    assert [log["message"] for log in result.logs] == messages or result.total_count > len(messages)
    assert [log["message"] for log in result.logs] == messages[: len(result.logs)]


def test_total_count_counts_every_match_regardless_of_limit_and_offset(filled):
    page = filled.query_logs(run_id="filters", limit=1, offset=3)
    assert page.total_count == 12 and [log["message"] for log in page.logs] == ["m8"]


def test_service_name_alone_returns_debug_logs_only_as_the_real_service_does():
    with server() as running, LogClient(running.target) as client:
        client.batch_write_logs([{"message": f"q{level}", "service_name": "quirk", "level": level, "run_id": "quirk"}
                                 for level in ("DEBUG", "INFO", "ERROR")])  # fmt: skip
        assert stored(client, 3, run_id="quirk") == 3, "a metadata-only query counts every level"
        assert [log["message"] for log in client.query_logs(service_name="quirk").logs] == ["qDEBUG"]
        assert client.query_logs(service_name="quirk", level="ERROR").total_count == 1


def test_unparsable_timestamp_is_replaced_by_the_server_clock():
    with server() as running, LogClient(running.target) as client:
        client.write_log("when?", timestamp="yesterday-ish", run_id="clock")
        assert stored(client, 1, run_id="clock") == 1
        stamp = client.query_logs(run_id="clock").logs[0]["timestamp"]
    assert stamp.startswith(time.strftime("%Y-%m-%dT", time.gmtime()))


def test_graceful_stop_stores_every_acknowledged_log_and_a_restart_sees_them(tmp_path):
    database = str(tmp_path / "logs.db")
    first = start_server_process("--db", database, "--flush-period", "60", "--flush-batch", "100000",
                                 "--queue-size", "100000")  # fmt: skip
    with LogClient(first.target) as client:
        batch = client.batch_write_logs([{"message": f"m{index}", "run_id": "durable"} for index in range(2500)])
    final = first.stop()
    assert batch.success_count == final["acked"] == final["stored"] == 2500
    second = start_server_process("--db", database)
    with LogClient(second.target) as client:
        assert client.query_logs(run_id="durable", limit=1).total_count == 2500
    second.stop()


def test_killed_server_loses_what_was_still_queued(tmp_path):
    database = str(tmp_path / "logs.db")
    crashed = start_server_process("--db", database, "--flush-period", "60", "--flush-batch", "100000")
    with LogClient(crashed.target) as client:
        assert client.write_log("acked, never stored", run_id="crash").success
    crashed.kill()
    restarted = start_server_process("--db", database)
    with LogClient(restarted.target) as client:
        assert client.query_logs(run_id="crash").total_count == 0
    restarted.stop()


def test_the_stats_file_is_rewritten_after_each_flush_while_a_slow_store_drains_its_queue(tmp_path):
    """2,000 logs queued at once, stored at 1,000 logs/s in batches of 100: the file said stored 0 until the queue
    had drained, though --help says it is written after each flush."""
    stats_file = tmp_path / "stats.json"
    with server(stats_file=str(stats_file), store_rate=1000, flush_batch=100) as running:
        with LogClient(running.target) as client:
            assert client.batch_write_logs([{"message": "m"}] * 2000).success_count == 2000
        seen, deadline = set(), time.monotonic() + 10
        while (stored := json.loads(stats_file.read_text())["stored"]) < 2000 and time.monotonic() < deadline:
            seen.add(stored)
            time.sleep(0.05)
    assert stored == 2000 and len(seen - {0}) >= 5, f"the file showed stored only as {sorted(seen)}"


def test_error_rate_answers_that_fraction_unavailable():
    with server(error_rate=0.3, seed=3) as running, LogClient(running.target) as client:
        statuses = [client.write_log("m").status for _ in range(1000)]
        stats = running.stats()
    assert statuses.count("UNAVAILABLE") == stats.injected_errors
    assert 240 <= stats.injected_errors <= 360


def test_drop_rate_discards_that_fraction_of_acknowledged_logs_at_flush():
    with server(drop_rate=0.2, seed=5) as running, LogClient(running.target) as client:
        client.batch_write_logs([{"message": "m", "run_id": "drops"}] * 2000)
        final = running.stop()
        assert final.acked == 2000 and final.stored + final.dropped == 2000
        assert 320 <= final.dropped <= 480


def test_latency_ms_delays_every_call():
    with server(latency_ms=80) as running, LogClient(running.target) as client:
        started = time.perf_counter()
        for _ in range(3):
            client.write_log("slow")
        elapsed = time.perf_counter() - started
        assert running.stats().injected_latency_calls == 3
    assert elapsed >= 0.24


def test_auth_token_is_required_and_metadata_keys_are_counted():
    with server(auth_token="s3cret") as running:
        channel, stub = stub_for(running)
        request = pb.WriteLogRequest(log_entry=pb.LogEntry(message="m"))
        with pytest.raises(grpc.RpcError) as refused:
            stub.WriteLog(request)
        stub.WriteLog(request, metadata=(("authorization", "Bearer s3cret"), ("x-tenant", "t1")))
        channel.close()
        seen = running.stats().metadata_keys_seen
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert seen == {"authorization": 1, "x-tenant": 1}


def test_health_and_reflection_answer():
    with server() as running:
        channel = grpc.insecure_channel(running.target)
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="logservice.LogService"), timeout=5
        )
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        answers = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        services = {service.name for answer in answers for service in answer.list_services_response.service}
        channel.close()
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert "logservice.LogService" in services and "grpc.health.v1.Health" in services


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--queue-size", "-1"], "--queue-size=-1 is not valid; accepted: a whole number >= 1"),
        (["--error-rate", "1.5"], "--error-rate=1.5 is not valid; accepted: a fraction from 0 to 1"),
        (["--port", "70000"], "--port=70000 is not valid; accepted: 0-65535"),
        (["--flush-period", "soon"], "argument --flush-period: invalid float value: 'soon'"),
        (
            ["--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"],
            "--tls-cert='/nonexistent.pem' is not a readable file",
        ),
        (
            ["--host", "10.9.9.9", "--port", "0"],
            "cannot listen on 10.9.9.9:0: Cannot assign requested address; accepted: an address of this machine",
        ),
        (["--host", "no such host", "--port", "0"], "--host='no such host' is not valid"),
        (["--flush-period", "inf"], "--flush-period=inf is not valid; accepted: a finite number"),
        (["--stall-for", "inf"], "--stall-for=inf is not valid; accepted: a finite number"),
    ],
)
@pytest.mark.slow
def test_bad_options_exit_2_with_one_line(args, message):
    """As ``python -m reference_server`` exits (a fork of the tests' server that imported it: 0.07 CPU-s, not 0.25)."""
    done = subprocess.run([*python_m("reference_server"), *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and message in done.stderr


def test_an_ipv6_host_is_served_on_that_address():
    with server(host="::1") as running:
        assert running.target.startswith("[::1]:")
        with LogClient(running.target) as client:
            assert client.write_log("over IPv6").success


@pytest.mark.slow
def test_busy_port_is_one_clear_line():
    with server() as running:
        port = running.target.rsplit(":", 1)[1]
        done = subprocess.run([*python_m("reference_server"), "--port", port], capture_output=True, text=True,
                              timeout=30)  # fmt: skip
    assert done.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_around_runs_a_command_against_a_fresh_server_and_passes_its_exit_code():
    script = (
        "import os, sys; from grpc_user import LogClient; "
        "c = LogClient(os.environ['LOCUST_HOST']); sys.exit(0 if c.write_log('x').success else 5)"
    )
    ok = subprocess.run([sys.executable, "-m", "reference_server.around", "--", sys.executable, "-c", script],
                        capture_output=True, text=True, timeout=60)  # fmt: skip
    failing = subprocess.run([sys.executable, "-m", "reference_server.around", "--", sys.executable, "-c",
                              "raise SystemExit(7)"], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "reference server listening on grpc://127.0.0.1:" in ok.stderr and "acked 1, stored 1" in ok.stderr
    assert failing.returncode == 7


def small_disk_server(tmp_path: Path, file_size_limit: int, *args: str) -> tuple[subprocess.Popen, str]:
    """A server subprocess whose files may grow to ``file_size_limit`` bytes: a full disk without root or mounts.
    Its output goes to a pipe, which the limit does not apply to. The limit is set by a small Python that then
    execs the server (an ignored SIGXFSZ and the limit survive exec), not by ``preexec_fn``: a child forked from this
    test process, which runs grpc's threads, could crash before its exec."""
    ready = tmp_path / "port"
    server = [sys.executable, "-m", "reference_server", "--port", "0", "--ready-file", str(ready),
              "--flush-period", "0.1", *args]  # fmt: skip
    limit = ("import os, resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
             f"resource.setrlimit(resource.RLIMIT_FSIZE, ({file_size_limit}, {file_size_limit})); "
             "os.execv(sys.argv[1], sys.argv[1:])")  # fmt: skip
    process = subprocess.Popen([sys.executable, "-c", limit, *server], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)  # fmt: skip
    deadline = time.monotonic() + 15
    while not (ready.exists() and ready.read_text()):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the server did not start: {process.communicate()[0]}")
        time.sleep(0.05)
    return process, f"127.0.0.1:{ready.read_text()}"


def stop_cleanly(process: subprocess.Popen) -> str:
    """SIGTERM; the server's output, once it has exited with 0."""
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=20)[0]
    assert process.returncode == 0, output
    return output


@pytest.mark.slow
def test_a_failed_flush_drops_its_batch_and_flushing_goes_on(tmp_path):
    """A full disk (the file-size limit makes SQLite's writes fail for real): acknowledged logs are lost and
    counted, later writes are still acknowledged, and the server stops cleanly."""
    stats_file = tmp_path / "stats.json"
    process, target = small_disk_server(tmp_path, 400 * 1024, "--db", str(tmp_path / "logs.db"), "--queue-size",
                                        "10000", "--stats-file", str(stats_file))  # fmt: skip
    try:
        with LogClient(target) as client:
            for _ in range(30):
                client.batch_write_logs([{"message": "x" * 200, "run_id": "full"} for _ in range(100)])
            time.sleep(1)
            assert all(client.write_log("after the disk filled", run_id="full").success for _ in range(5))
    finally:
        output = stop_cleanly(process)
    stats = json.loads(stats_file.read_text())
    assert stats["flush_failed"] > 0 and stats["stored"] + stats["flush_failed"] == stats["acked"] == 3005
    assert "flush failed" in output and f"lost {stats['flush_failed']} (failed flushes)" in output


@pytest.mark.slow
def test_a_stats_file_on_a_full_disk_is_logged_and_flushing_goes_on(tmp_path):
    """Only the stats file's first, all-zero version fits: every rewrite fails, and every log is still stored."""
    first = json.dumps(ServerStats().as_dict(), indent=2, sort_keys=True)
    stats_file = tmp_path / "stats.json"
    process, target = small_disk_server(tmp_path, len(first), "--queue-size", "2000", "--stats-file", str(stats_file))
    try:
        with LogClient(target) as client:
            batches = [client.batch_write_logs([{"message": "m", "run_id": "stats"} for _ in range(100)])
                       for _ in range(30)]  # fmt: skip
            assert [batch.success_count for batch in batches] == [100] * 30, "the flusher stopped, the queue filled"
            assert stored(client, 3000, run_id="stats") == 3000
    finally:
        output = stop_cleanly(process)
    assert f"the stats file {stats_file} could not be written" in output and "acked 3000, stored 3000" in output
    assert json.loads(stats_file.read_text()) == json.loads(first) and not Path(f"{stats_file}.partial").exists()


@pytest.mark.slow
def test_a_stats_file_that_cannot_be_written_at_start_is_one_line_and_exit_2(tmp_path):
    missing = tmp_path / "no-such-folder" / "stats.json"
    command = [sys.executable, "-m", "reference_server", "--port", "0", "--stats-file", str(missing)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"python -m reference_server: error: --stats-file '{missing}' cannot be written: No such file or directory"
    ]


@pytest.mark.slow
def test_around_with_its_own_stats_and_ready_files_can_restart_the_server_and_reports_its_counters(tmp_path):
    """``--stats-file``/``--ready-file`` given to around are the server's: the restart command and around's last
    line read the file the server writes (not one in around's temporary folder, which the server never wrote)."""
    stats_file, ready_file = tmp_path / "stats.json", tmp_path / "port"
    ready_file.write_text("1")  # a previous run's port: never taken for this server's
    done = subprocess.run([sys.executable, "-m", "reference_server.around", "--flush-period", "0.1", "--stats-file",
                           str(stats_file), f"--ready-file={ready_file}", "--", sys.executable, "-m",
                           "reference_server.restart"], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "restarted" in done.stdout and "Traceback" not in done.stderr
    assert "restarts 1" in done.stderr and json.loads(stats_file.read_text())["restarts"] == 1
    assert f"grpc://127.0.0.1:{ready_file.read_text()}" in done.stderr
