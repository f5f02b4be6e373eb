"""Sustained throughput of the reference server, pinned to one core, driven by a grpc.aio client.

The queue is made large enough not to be the bottleneck (said in the output): this measures how
fast the server acknowledges; how fast its SQLite flusher stores is printed next to it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from benchmarks.command_line import run_benchmark
from reference_server.process import start_server_process

SERVER_CORE = 1
RUNS = (("WriteLog", 0, 30000), ("BatchWriteLog x500", 500, 300))


def drive(target: str, batch_size: int, calls: int) -> float:
    """Calls per second of a bare grpc.aio client with 64 concurrent callers."""
    command = [sys.executable, "-m", "benchmarks.bare_aio", "--target", target, "--calls", str(calls),
               "--concurrency", "64", "--batch-size", str(batch_size)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=300)
    measured = json.loads(done.stdout)
    return measured["calls"] / measured["seconds"]


def main() -> None:
    """Print requests/s and logs/s for WriteLog and BatchWriteLog(500)."""
    queue = "10000000"
    print(f"server pinned to core {SERVER_CORE}; --queue-size {queue} so the queue is not the bottleneck")
    for label, batch_size, calls in RUNS:
        with start_server_process("--queue-size", queue, "--flush-batch", "1000", "--flush-period", "1",
                                  cpu_core=SERVER_CORE) as server:  # fmt: skip
            rate = drive(server.target, batch_size, calls)
            stopping = time.perf_counter()
            final = server.stop()
            drained = time.perf_counter() - stopping
        logs = rate * max(batch_size, 1)
        print(f"{label:<20} {rate:>9.0f} requests/s {logs:>10.0f} logs/s acknowledged; "
              f"{final['stored']} stored, the last of them {drained:.1f} s after the load stopped")  # fmt: skip


if __name__ == "__main__":
    sys.exit(run_benchmark(main, __doc__))
