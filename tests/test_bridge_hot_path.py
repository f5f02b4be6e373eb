"""What keeps the bridge cheap per call, each in a fresh monkey-patched process (as Locust runs it)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from reference_server.process import start_server_process

# Real Locust runs or processes of several seconds each: make test runs them, make test-fast does not.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def run_patched(code: str) -> dict:
    """Run ``code`` after gevent's monkey-patching in a new interpreter; its last stdout line is JSON."""
    script = "from gevent import monkey\nmonkey.patch_all()\n" + textwrap.dedent(code)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_grpc_imported_through_grpc_user_gets_native_locks_under_gevent():
    seen = run_patched("""
        import json, threading
        import grpc_user
        import grpc._observability as observability
        print(json.dumps({"grpc": type(observability._plugin_lock).__module__,
                          "later": type(threading.RLock()).__module__}))
    """)
    assert seen == {"grpc": "_thread", "later": "threading"}, "only grpc's import-time locks are native"


def test_greenlets_asking_for_the_loop_at_once_share_one():
    seen = run_patched("""
        import json, gevent
        from grpc_user.locust.transport.bridge import hub_loop
        loops = [greenlet.value for greenlet in gevent.joinall([gevent.spawn(hub_loop) for _ in range(5)])]
        print(json.dumps({"distinct": len({id(loop) for loop in loops}), "stopped": loops[0].stopped_because}))
    """)
    assert seen == {"distinct": 1, "stopped": ""}


def test_a_loop_that_never_idles_still_lets_greenlets_run():
    seen = run_patched("""
        import asyncio, json, time, gevent
        from grpc_user.locust.transport.bridge import hub_loop

        async def busy():
            while True:
                await asyncio.sleep(0)

        loop = hub_loop()
        loop.submit(busy())
        ticks, started = [], time.monotonic()
        while time.monotonic() - started < 0.5:
            gevent.sleep(0.01)
            ticks.append(1)
        print(json.dumps({"ticks": len(ticks)}))
    """)
    assert seen["ticks"] >= 10, seen


def test_answers_and_failures_come_back_through_the_direct_call_path():
    with start_server_process("--error-rate", "1") as failing, start_server_process() as healthy:
        seen = run_patched(f"""
            import json, grpc
            from grpc_user.locust.transport.bridge import Transports
            from grpc_user.pb import log_service_pb2 as pb
            from grpc_user.security import Security
            from grpc_user.target import parse_target

            payload = pb.WriteLogRequest(log_entry=pb.LogEntry(message="m")).SerializeToString()
            path = "/logservice.LogService/WriteLog"
            transports = Transports()
            answer = transports.shared(parse_target("{healthy.target}"), Security()).unary(path, payload, 5)
            try:
                transports.shared(parse_target("{failing.target}"), Security()).unary(path, payload, 5)
                status = "no error"
            except grpc.RpcError as error:
                status = error.code().name
            print(json.dumps({{"success": pb.WriteLogResponse.FromString(answer).success, "status": status}}))
        """)
    assert seen == {"success": True, "status": "UNAVAILABLE"}


def test_a_failing_loop_fails_pending_and_later_calls_at_once():
    with start_server_process("--latency-ms", "300") as server:
        seen = run_patched(f"""
            import json, time, gevent
            from grpc_user.locust.transport.bridge import LoopStopped, Transports, hub_loop
            from grpc_user.security import Security
            from grpc_user.target import parse_target

            transport = Transports().shared(parse_target("{server.target}"), Security())
            pending = transport.start_unary("/logservice.LogService/WriteLog", b"", 5)

            def broken_select(timeout=None):
                raise OSError("the selector broke")

            hub_loop()._selector.select = broken_select
            hub_loop().wake()
            started = time.monotonic()
            outcomes = []
            for call in (pending.result, lambda: transport.unary("/logservice.LogService/WriteLog", b"", 5)):
                try:
                    call()
                    outcomes.append("answered")
                except LoopStopped as error:
                    outcomes.append(str(error))
            print(json.dumps({{"outcomes": outcomes, "seconds": time.monotonic() - started}}))
        """)
    assert all("the selector broke" in outcome for outcome in seen["outcomes"]), seen
    assert seen["seconds"] < 0.2, "no call waits for its deadline"
