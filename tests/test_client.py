"""LogClient and AsyncLogClient against a real reference server on a loopback port."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import grpc_user
from grpc_user import AsyncLogClient, LogClient, shared_client
from grpc_user.command_line import main as cli_main
from reference_server import ReferenceServer, ServerSettings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def server():
    with ReferenceServer(ServerSettings(port=0, flush_period=0.05)) as running:
        yield running


@pytest.fixture
def tiny_queue_server():
    """A queue of 5 that is never flushed during the test: the 6th log finds it full."""
    with ReferenceServer(ServerSettings(port=0, queue_size=5, flush_period=60, flush_batch=1000)) as running:
        yield running


def wait_until_stored(client: LogClient, count: int, **filters) -> int:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        total = client.query_logs(limit=1, **filters).total_count
        if total >= count:
            return total
        time.sleep(0.05)
    return total


def test_write_log_succeeds_with_a_queued_log_id(server):
    with LogClient(server.target) as client:
        result = client.write_log("checkout done", level="WARN", adv_id=7)
    assert (result.success, result.status, result.cause, result.error_message) == (True, "OK", "", "")
    assert result.log_id.startswith("queued-")
    assert result.as_dict()["success"] is True


def test_written_fields_and_metadata_are_stored_as_split(server):
    with LogClient(server.target) as client:
        client.write_log("m", service_name="svc", level="error", trace_id="t-9", span_id="s-9", adv_id=1, tag="x")
        assert wait_until_stored(client, 1, trace_id="t-9") == 1
        log = client.query_logs(trace_id="t-9").logs[0]
    assert log["service_name"] == "svc" and log["level"] == "ERROR" and log["span_id"] == "s-9"
    assert log["metadata"] == {"adv_id": "1", "tag": "x"}


def test_full_queue_is_reported_as_resource_exhausted_not_raised(tiny_queue_server):
    with LogClient(tiny_queue_server.target) as client:
        results = [client.write_log(f"log {index}") for index in range(6)]
    assert [result.success for result in results] == [True] * 5 + [False]
    assert results[-1].status == results[-1].cause == "RESOURCE_EXHAUSTED"
    assert results[-1].error_message.startswith("RESOURCE_EXHAUSTED: log queue is full")


def test_partial_batch_reports_accepted_and_rejected_counts(tiny_queue_server):
    with LogClient(tiny_queue_server.target) as client:
        result = client.batch_write_logs([{"message": f"m{index}", "adv_id": index} for index in range(8)])
    assert (result.total_count, result.success_count, result.error_count) == (8, 5, 3)
    assert result.partial and not result.success
    assert result.results[0].cause == "PARTIAL_BATCH" and result.results[0].status == "OK"
    assert result.errors == ["PARTIAL_BATCH: 3 logs failed to enqueue (accepted 5 of 8)"]
    assert len(result.log_ids) == 5


def test_batch_into_a_full_queue_is_an_application_failure(tiny_queue_server):
    with LogClient(tiny_queue_server.target) as client:
        client.batch_write_logs([{"message": "fill"}] * 5)
        result = client.batch_write_logs([{"message": "late"}] * 3)
    assert (result.success_count, result.error_count) == (0, 3)
    assert result.results[0].cause == "APP_FAILURE" and not result.partial


def test_batches_are_chunked_at_max_batch_size_one_rpc_each(server):
    with LogClient(server.target, max_batch_size=3) as client:
        result = client.batch_write_logs([{"message": f"m{index}"} for index in range(7)])
    assert [chunk.sent for chunk in result.results] == [3, 3, 1]
    assert result.success and result.success_count == 7
    assert server.stats().calls["BatchWriteLog"] == 3


def test_max_batch_size_comes_from_the_environment(server, monkeypatch):
    monkeypatch.setenv("MAX_BATCH_SIZE", "4")
    with LogClient(server.target) as client:
        assert [chunk.sent for chunk in client.batch_write_logs([{"message": "m"}] * 9).results] == [4, 4, 1]


def test_unreachable_target_is_reported_naming_it_within_the_deadline():
    started = time.monotonic()
    with LogClient("127.0.0.1:9", timeout=2) as client:
        result = client.write_log("nobody listens")
    assert time.monotonic() - started < 2.5
    assert not result.success and result.status == "UNAVAILABLE"
    assert "127.0.0.1:9" in result.error_message and result.error_message.startswith("UNAVAILABLE: ")


def test_misuse_raises_before_anything_is_sent(server):
    with LogClient(server.target) as client:
        with pytest.raises(ValueError, match="DEBUG, INFO, WARN, ERROR, FATAL"):
            client.write_log("m", level="VERBOSE")
        with pytest.raises(ValueError, match="at least one entry"):
            client.batch_write_logs([])
        with pytest.raises(ValueError, match="limit=-1"):
            client.query_logs(limit=-1)
    with pytest.raises(ValueError, match="timeout"):
        LogClient(server.target, timeout=0)


def test_query_counts_every_match_whatever_the_limit(server):
    with LogClient(server.target) as client:
        client.batch_write_logs([{"message": f"m{index}", "run_id": "q-1"} for index in range(12)])
        assert wait_until_stored(client, 12, run_id="q-1") == 12
        page = client.query_logs(run_id="q-1", limit=5, offset=10)
    assert page.success and page.total_count == 12 and len(page.logs) == 2


def test_health_uses_the_standard_health_service(server):
    with LogClient(server.target) as client:
        health = client.health()
    assert health.serving and health.method == "health"


def test_module_level_write_log_uses_grpc_server_host_and_port(server, monkeypatch):
    host, port = server.target.rsplit(":", 1)
    monkeypatch.setenv("GRPC_SERVER_HOST", host)
    monkeypatch.setenv("GRPC_SERVER_PORT", port)
    monkeypatch.setattr(shared_client, "_client", None)
    assert grpc_user.write_log("from the shared client", adv_id=1).success
    assert grpc_user.batch_write_logs([{"message": "a"}, {"message": "b"}]).success_count == 2


def test_async_client_gives_the_same_results(server, tiny_queue_server):
    async def scenario():
        async with AsyncLogClient(server.target, max_batch_size=2) as client:
            ok = await client.write_log("async", level="debug", adv_id=1)
            batch = await client.batch_write_logs([{"message": "a"}, {"message": "b"}, {"message": "c"}])
            health = await client.health()
        async with AsyncLogClient(tiny_queue_server.target) as client:
            partial = await client.batch_write_logs([{"message": "x"}] * 7)
            full = await client.write_log("no room")
        async with AsyncLogClient("127.0.0.1:9", timeout=1) as client:
            down = await client.write_log("nobody")
        return ok, batch, health, partial, full, down

    ok, batch, health, partial, full, down = asyncio.run(scenario())
    assert ok.success and ok.log_id.startswith("queued-")
    assert [chunk.sent for chunk in batch.results] == [2, 1] and batch.success_count == 3
    assert health.serving
    assert (partial.success_count, partial.error_count, partial.results[0].cause) == (5, 2, "PARTIAL_BATCH")
    assert full.status == "RESOURCE_EXHAUSTED"
    assert down.status == "UNAVAILABLE" and "127.0.0.1:9" in down.error_message


def test_cli_writes_queries_and_checks_health(server, capsys):
    assert cli_main(["--target", server.target, "write", "hello", "--level", "warn", "--meta", "run_id=cli-1"]) == 0
    assert capsys.readouterr().out.startswith("OK log_id=queued-")
    with LogClient(server.target) as client:
        wait_until_stored(client, 1, run_id="cli-1")
    assert cli_main(["--target", server.target, "--json", "query", "--meta", "run_id=cli-1"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["total_count"] == 1 and answer["logs"][0]["level"] == "WARN"
    assert cli_main(["--target", server.target, "health"]) == 0
    assert capsys.readouterr().out.startswith("SERVING grpc://")


def test_cli_reports_a_dead_target_and_bad_input_in_one_line(capsys):
    assert cli_main(["--target", "127.0.0.1:9", "--timeout", "1", "health"]) == 1
    assert capsys.readouterr().out.startswith("NOT SERVING grpc://127.0.0.1:9")
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["--target", "127.0.0.1:9", "write", "m", "--level", "LOUD"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


@pytest.mark.slow
def test_the_client_the_settings_and_the_reference_server_never_import_locust_or_gevent():
    """Importing Locust monkey-patches the process: a script or service using the client must not pay for it."""
    code = (
        "import sys, grpc_user, grpc_user.security, grpc_user.channels, grpc_user.command_line, reference_server, "
        "reference_server.around; print(sorted(m for m in sys.modules if m.split('.')[0] in ('locust', 'gevent')))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.slow
def test_a_client_left_open_or_closed_twice_lets_the_interpreter_exit_quietly(server):
    """A channel with a connectivity subscriber left to grpc's ``__del__`` at shutdown waited forever for the polling
    thread's lock; a channel closed under that thread printed a traceback from it."""
    script = (
        "from grpc_user import LogClient\n"
        f"LogClient({server.target!r}).write_log('left open')\n"
        "LogClient('127.0.0.1:1', timeout=1).write_log('refused, left open')\n"
        f"closed = LogClient({server.target!r}); closed.write_log('closed'); closed.close(); closed.close()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
