"""The bridge alone: greenlets calling ``AioTransport`` with no Locust, sending the suite's requests.

python -m benchmarks.bridge_alone --target 127.0.0.1:50051 --calls 20000 --concurrency 50
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import time  # noqa: E402

import gevent  # noqa: E402

from benchmarks.client_cli import bench_data, client_main, next_call  # noqa: E402
from grpc_user.calls import METHOD_PATHS  # noqa: E402
from grpc_user.locust.transport.bridge import AioTransport  # noqa: E402
from grpc_user.security import Security  # noqa: E402
from grpc_user.target import parse_target  # noqa: E402


def run(target: str, calls: int, concurrency: int, batch_size: int) -> dict[str, float]:
    """Make exactly ``calls`` calls from ``concurrency`` greenlets; return calls and wall seconds."""
    transport = AioTransport(parse_target(target), Security())
    remaining = calls

    def caller(index: int) -> None:
        nonlocal remaining
        data = bench_data(index)
        while remaining > 0:
            remaining -= 1
            rpc, request = next_call(data, batch_size)
            transport.unary(METHOD_PATHS[rpc], request.SerializeToString(), 10)

    started = time.perf_counter()
    gevent.joinall([gevent.spawn(caller, index) for index in range(concurrency)], raise_error=True)
    seconds = time.perf_counter() - started
    transport.close()
    return {"calls": calls, "seconds": seconds}


def main() -> None:
    client_main(run, __doc__)


if __name__ == "__main__":
    main()
