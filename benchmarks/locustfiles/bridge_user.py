"""A Locust User on the suite's bridge and nothing else: one call, one request event (no counts, no audit,
no budget, no run id; the suite's garbage-collector tuning). ``--calls N``: N calls in all, then the run quits.

    locust -f benchmarks/locustfiles/bridge_user.py --headless -u 50 -r 50 --host 127.0.0.1:50051 --calls 20000
"""

from __future__ import annotations

import time

import gevent
from locust import User, events, task
from locust.exception import StopUser

from benchmarks.client_cli import bench_data, next_call
from grpc_user.calls import METHOD_PATHS
from grpc_user.locust.lifecycle.garbage import tune_garbage_collection
from grpc_user.locust.transport.bridge import AioTransport
from grpc_user.security import Security
from grpc_user.target import parse_target

_shared: dict = {}


@events.init_command_line_parser.add_listener
def _options(parser) -> None:
    parser.add_argument("--calls", type=int, default=10_000, help="calls in all, then quit")
    parser.add_argument("--bench-batch-size", type=int, default=0, help="0: WriteLog; N: BatchWriteLog of N")


@events.init.add_listener
def _tune_garbage_collection(**_) -> None:
    tune_garbage_collection()  # as the suite does: the layers differ by the suite's bookkeeping alone


@events.test_start.add_listener
def _transport(environment, **_) -> None:
    target = parse_target(environment.host)
    _shared.update(transport=AioTransport(target, Security()), remaining=environment.parsed_options.calls, finished=0)


class BridgeUser(User):
    """Calls the service through the bridge's shared transport; fires one request event per call."""

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.batch_size = options.bench_batch_size
        self.data = bench_data(id(self) % 1000)

    @task
    def call(self) -> None:
        if _shared["remaining"] <= 0:
            raise StopUser()
        _shared["remaining"] -= 1
        rpc, request = next_call(self.data, self.batch_size)
        path, payload = METHOD_PATHS[rpc], request.SerializeToString()
        start_time, started = time.time(), time.perf_counter()
        answer = _shared["transport"].unary(path, payload, 10)
        self.environment.events.request.fire(
            request_type="grpc", name=rpc, response_time=(time.perf_counter() - started) * 1000,
            response_length=len(answer), exception=None, context={}, start_time=start_time, url=path,
        )  # fmt: skip
        _shared["finished"] += 1
        if _shared["finished"] == self.environment.parsed_options.calls:
            gevent.spawn(self.environment.runner.quit)
