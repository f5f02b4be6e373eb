"""Run by test_bridge.py in a fresh, monkey-patched process: the transport under gevent, as Locust uses it.

python tests/bridge_probe.py TARGET   -> one JSON line of measurements
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
import grpc  # noqa: E402

from grpc_user.locust.transport.bridge import Transports  # noqa: E402
from grpc_user.pb import log_service_pb2 as pb  # noqa: E402
from grpc_user.security import Security  # noqa: E402
from grpc_user.target import parse_target  # noqa: E402

WRITE = "/logservice.LogService/WriteLog"


def main(target: str) -> None:
    """Concurrent calls, a ticking greenlet during them, a killed caller, a deadline."""
    transport = Transports().shared(parse_target(target), Security())
    payload = pb.WriteLogRequest(log_entry=pb.LogEntry(message="probe")).SerializeToString()
    ticks = []
    ticker = gevent.spawn(lambda: [ticks.append(gevent.sleep(0.01)) for _ in range(1000)])
    started = time.perf_counter()
    gevent.joinall([gevent.spawn(transport.unary, WRITE, payload, 5) for _ in range(50)], raise_error=True)
    concurrent_seconds = time.perf_counter() - started
    ticks_during_calls = len(ticks)
    victim = gevent.spawn(transport.unary, WRITE, payload, 5)
    gevent.sleep(0.02)
    killed_at = time.perf_counter()
    victim.kill(block=True, timeout=2)
    kill_seconds = time.perf_counter() - killed_at
    started = time.perf_counter()
    try:
        transport.unary(WRITE, payload, 0.05)
        deadline_status = "OK"
    except grpc.RpcError as error:
        deadline_status = error.code().name
    deadline_seconds = time.perf_counter() - started
    ticker.kill()
    print(json.dumps({
        "concurrent_seconds": concurrent_seconds,
        "ticks_during_calls": ticks_during_calls,
        "kill_seconds": kill_seconds,
        "victim_dead": victim.dead,
        "deadline_status": deadline_status,
        "deadline_seconds": deadline_seconds,
    }))  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1])
