"""``make soak``: ten minutes of the mixed workload against the reference server; the Locust
process's RSS at the start, the middle and the end shows whether memory stays flat.

The load is paced (``--target-rps``, small batches) so that the reference server, storing on disk,
keeps up for the whole soak: a soak measures the generator's memory, not a saturated server.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from benchmarks.command_line import run_benchmark
from reference_server.process import start_server_process

ROOT = Path(__file__).resolve().parent.parent
SOAK_SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))
WARMUP_SECONDS = 30
USERS = 20
TARGET_RPS = 400


def main() -> None:
    """Run the soak and print RSS samples and their growth."""
    with tempfile.TemporaryDirectory() as folder, start_server_process(
        "--queue-size", "100000", "--flush-period", "0.5", "--db", f"{folder}/soak.db"
    ) as server:  # fmt: skip
        command = [sys.executable, "-m", "locust", "-f", "locustfiles/mixed.py", "--headless", "-u", str(USERS),
                   "-r", str(USERS), "-t", f"{SOAK_SECONDS + WARMUP_SECONDS}s", "--host", f"grpc://{server.target}",
                   "--target-rps", str(TARGET_RPS), "--batch-size", "10", "--mix", "write=80,batch=15,query=5",
                   "--csv", f"{folder}/soak", "--only-summary", "--loglevel", "WARNING"]  # fmt: skip
        locust = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        process, started, samples = psutil.Process(locust.pid), time.monotonic(), []
        checkpoints = (("start", WARMUP_SECONDS), ("middle", WARMUP_SECONDS + SOAK_SECONDS / 2),
                       ("end", WARMUP_SECONDS + SOAK_SECONDS - 5))  # fmt: skip
        for label, at in checkpoints:
            time.sleep(max(0.0, started + at - time.monotonic()))
            samples.append(process.memory_info().rss / 2**20)
            print(f"RSS {label:<6} at {at:6.0f} s: {samples[-1]:8.1f} MiB", flush=True)
        locust.communicate(timeout=120)
        with open(f"{folder}/soak_stats.csv", newline="") as handle:
            total = [row for row in csv.DictReader(handle) if row["Name"] == "Aggregated"][0]
        print(f"{USERS} users, --target-rps {TARGET_RPS}: {total['Request Count']} calls, "
              f"{total['Failure Count']} failed, {float(total['Requests/s']):.0f} calls/s")  # fmt: skip
        growth = samples[-1] - samples[0]
        print(f"RSS growth start -> end over {SOAK_SECONDS} s: {growth:+.1f} MiB "
              f"({growth / samples[0] * 100:+.1f} %); locust exit code {locust.returncode}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(run_benchmark(main, __doc__))
