"""The command line shared by the benchmark clients: make ``--calls`` calls, print calls and seconds as JSON."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable


def client_main(run: Callable[[str, int, int, int], dict[str, float]], description: str | None) -> None:
    """Parse ``--target --calls --concurrency --batch-size``, call ``run`` with them, print its result."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--target", required=True)
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=0, help="0: WriteLog; N: BatchWriteLog of N entries")
    args = parser.parse_args()
    print(json.dumps(run(args.target, args.calls, args.concurrency, args.batch_size)))
