"""Open model: does ``--arrival-rate 1000`` hold against a service that answers after 200 ms (about 200 calls
in flight) with Locust on one core? And does a 2 s stall show in the latency (no coordinated omission),
where pacing (``--target-rps``) hides it?

The server runs on core 1 and Locust on core 0. Achieved calls/s count from Locust's own stats; CPU is the
Locust process's own (user + system) over the run.
"""

from __future__ import annotations

import csv
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.command_line import run_benchmark
from reference_server.process import start_server_process

ROOT = Path(__file__).resolve().parent.parent
RATE, LATENCY_MS, USERS, SECONDS = 1000, 200, 400, 15
STALL = {"rate": 200, "users": 500, "seconds": 10, "at": 3, "for": 2}
PACED_USERS = 20


def _locust(host: str, folder: str, users: int, seconds: int, *load: str) -> tuple[dict[str, dict[str, str]], float]:
    """One headless single-workload run pinned to core 0: Locust's stats rows by name (and the suite's arrival counts
    under ``arrivals``), and its CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    prefix = f"{folder}/open"
    command = [sys.executable, "-m", "locust", "-f", "locustfiles/single.py", "--headless", "-u", str(users),
               "-r", str(users), "-t", f"{seconds}s", "--host", host, "--csv", prefix, *load, "--no-audit",
               "--only-summary"]  # fmt: skip
    subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 120,
                   preexec_fn=lambda: os.sched_setaffinity(0, {0}))  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    with open(f"{prefix}_stats.csv", newline="") as handle:
        stats = {row["Name"]: row for row in csv.DictReader(handle)}
    if os.path.exists(f"{prefix}_arrivals.csv"):  # dropped arrivals are the suite's own count, not requests
        with open(f"{prefix}_arrivals.csv", newline="") as handle:
            stats["arrivals"] = next(csv.DictReader(handle))
    return stats, cpu


def _row(label: str, stats: dict[str, dict[str, str]], seconds: int, cpu: float, rate: int) -> str:
    calls = int(stats.get("WriteLog", {}).get("Request Count", 0))
    dropped = int(stats.get("arrivals", {}).get("Dropped", 0))
    write = stats.get("WriteLog", {})
    return (
        f"{label:<34} {rate:>8} {calls / seconds:>10.0f} {dropped:>8} {write.get('50%', '-'):>7} "
        f"{write.get('95%', '-'):>7} {write.get('99%', '-'):>7} {cpu / seconds:>10.2f}"
    )


def main() -> None:
    """Both measurements, one table."""
    print(f"{'case':<34} {'offered':>8} {'calls/s':>10} {'dropped':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
          f"{'cores used':>10}")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        with start_server_process("--latency-ms", str(LATENCY_MS), "--queue-size", "10000000", "--flush-batch", "5000",
                                  cpu_core=1) as server:  # fmt: skip
            stats, cpu = _locust(f"grpc://{server.target}", folder, USERS, SECONDS, "--arrival-rate", str(RATE))
        print(_row(f"{LATENCY_MS} ms service, -u {USERS}", stats, SECONDS, cpu, RATE))
        stalls = (("--arrival-rate", STALL["users"], "open model"), ("--target-rps", PACED_USERS, "pacing"))
        for option, users, model in stalls:
            with start_server_process("--stall-at", str(STALL["at"]), "--stall-for", str(STALL["for"]),
                                      "--queue-size", "10000000", cpu_core=1) as server:  # fmt: skip
                stats, cpu = _locust(f"grpc://{server.target}", folder, users, STALL["seconds"], option,
                                     str(STALL["rate"]))  # fmt: skip
            print(_row(f"{STALL['for']} s stall, {model}, -u {users}", stats, STALL["seconds"], cpu, STALL["rate"]))
    print(
        f"target: {RATE} calls/s held with about {RATE * LATENCY_MS // 1000} in flight on one core; the stall run "
        f"offers {STALL['rate'] * STALL['seconds']} calls with p95 >= 1000 ms"
    )


if __name__ == "__main__":
    sys.exit(run_benchmark(main, __doc__))
