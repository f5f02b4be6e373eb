"""The bridge alone: greenlets calling ``AioTransport`` with no Locust, sending the suite's requests.

    python -m benchmarks.bridge_alone --target 127.0.0.1:50051 --calls 20000 --concurrency 50
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import time  # noqa: E402

import gevent  # noqa: E402

from benchmarks.client_cli import client_main  # noqa: E402
from grpc_user import calls  # noqa: E402
from grpc_user.locust.transport.bridge import AioTransport  # noqa: E402
from grpc_user.locust.workloads.testdata import LogDataGenerator  # noqa: E402
from grpc_user.security import Security  # noqa: E402
from grpc_user.target import parse_target  # noqa: E402

WRITE_LOG, BATCH_WRITE_LOG = (f"/{calls.SERVICE}/{rpc}" for rpc in (calls.WRITE_LOG, calls.BATCH_WRITE_LOG))


def run(target: str, calls: int, concurrency: int, batch_size: int) -> dict[str, float]:
    """Make exactly ``calls`` calls from ``concurrency`` greenlets; return calls and wall seconds."""
    transport = AioTransport(parse_target(target), Security())
    remaining = calls

    def caller(index: int) -> None:
        nonlocal remaining
        data = LogDataGenerator(run_id="bench", service_name="bench", message_bytes=128, seed=1, user_index=index)
        while remaining > 0:
            remaining -= 1
            if batch_size:
                transport.unary(BATCH_WRITE_LOG, data.batch_request(batch_size).SerializeToString(), 10)
            else:
                transport.unary(WRITE_LOG, data.write_request().SerializeToString(), 10)

    started = time.perf_counter()
    gevent.joinall([gevent.spawn(caller, index) for index in range(concurrency)], raise_error=True)
    seconds = time.perf_counter() - started
    transport.close()
    return {"calls": calls, "seconds": seconds}


def main() -> None:
    client_main(run, __doc__)


if __name__ == "__main__":
    main()
