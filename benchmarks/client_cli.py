"""What the benchmark clients share: the next call to make, and the command line (``--calls`` calls, then calls and
seconds printed as JSON)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from grpc_user import calls
from grpc_user.testdata import LogDataGenerator


def bench_data(user_index: int) -> LogDataGenerator:
    """The test data every benchmark client sends: the same seed, 128-byte messages."""
    return LogDataGenerator(run_id="bench", service_name="bench", message_bytes=128, seed=1, user_index=user_index)


def next_call(data: LogDataGenerator, batch_size: int) -> tuple[str, Any]:
    """The RPC and request of the next call: a WriteLog, or a BatchWriteLog of ``batch_size`` entries."""
    if batch_size:
        return calls.BATCH_WRITE_LOG, data.batch_request(batch_size)
    return calls.WRITE_LOG, data.write_request()


def client_main(run: Callable[[str, int, int, int], dict[str, float]], description: str | None) -> None:
    """Parse ``--target --calls --concurrency --batch-size``, call ``run`` with them, print its result."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--target", required=True)
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=0, help="0: WriteLog; N: BatchWriteLog of N entries")
    args = parser.parse_args()
    print(json.dumps(run(args.target, args.calls, args.concurrency, args.batch_size)))
