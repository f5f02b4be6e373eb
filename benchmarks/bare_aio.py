"""The reference client: a bare grpc.aio loop, no Locust, no gevent, sending the suite's requests.

python -m benchmarks.bare_aio --target 127.0.0.1:50051 --calls 20000 --concurrency 50
"""

from __future__ import annotations

import asyncio
import time

import grpc.aio

from benchmarks.client_cli import bench_data, client_main, next_call
from grpc_user.channels import CHANNEL_OPTIONS
from grpc_user.pb import log_service_pb2_grpc as pb_grpc


async def run(target: str, calls: int, concurrency: int, batch_size: int) -> dict[str, float]:
    """Make exactly ``calls`` calls from ``concurrency`` coroutines; return calls and wall seconds."""
    async with grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) as channel:
        stub = pb_grpc.LogServiceStub(channel)
        remaining = calls

        async def caller(index: int) -> None:
            nonlocal remaining
            data = bench_data(index)
            while remaining > 0:
                remaining -= 1
                rpc, request = next_call(data, batch_size)
                await getattr(stub, rpc)(request, timeout=10)

        started = time.perf_counter()
        await asyncio.gather(*(caller(index) for index in range(concurrency)))
        return {"calls": calls, "seconds": time.perf_counter() - started}


def main() -> None:
    client_main(lambda *args: asyncio.run(run(*args)), __doc__)


if __name__ == "__main__":
    main()
