"""CPU per call: the suite's Locust workloads against a bare grpc.aio loop, same server, one run.

Each client runs as its own process pinned to one core (the server gets the other), and is
measured by the kernel (rusage of every thread, user + system). Start-up and shut-down
cost is cancelled by a differential measurement: CPU(N2 calls) - CPU(N1 calls) over N2 - N1,
exact because ``--max-requests`` hands out permits before each call. A child's CPU is read
from this process's RUSAGE_CHILDREN, which grows by exactly that child's usage when it is reaped.
The two clients alternate for ``REPEATS`` rounds and each keeps its cheapest round: on a shared
machine, noise only ever adds CPU, and alternating exposes both clients to the same drift.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from reference_server.process import start_server_process

ROOT = Path(__file__).resolve().parent.parent
CLIENT_CORE, SERVER_CORE = 0, 1
USERS = 50
REPEATS = 3


@dataclass
class Measured:
    """One client process: calls made, CPU seconds (all threads), wall seconds."""

    calls: int
    cpu: float
    wall: float


def _pin_client() -> None:
    if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() > 1:
        os.sched_setaffinity(0, {CLIENT_CORE})


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _measure(command: list[str]) -> tuple[float, float, str]:
    """Run a client to completion; its CPU is the growth of this process's waited-for children's CPU."""
    cpu_before, started = _children_cpu(), time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, preexec_fn=_pin_client)
    wall, cpu = time.perf_counter() - started, _children_cpu() - cpu_before
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return cpu, wall, done.stdout


def bare_aio(target: str, calls: int, batch_size: int) -> Measured:
    """The bare grpc.aio loop making ``calls`` calls."""
    command = [sys.executable, "-m", "benchmarks.bare_aio", "--target", target, "--calls", str(calls),
               "--concurrency", str(USERS), "--batch-size", str(batch_size)]  # fmt: skip
    cpu, wall, stdout = _measure(command)
    return Measured(calls, cpu, json.loads(stdout)["seconds"])


def suite(target: str, locustfile: str, calls: int, extra: list[str]) -> Measured:
    """A headless Locust run of a suite workload stopped by ``--max-requests``."""
    with tempfile.TemporaryDirectory() as folder:
        prefix = f"{folder}/bench"
        command = [sys.executable, "-m", "locust", "-f", locustfile, "--headless", "-u", str(USERS), "-r", str(USERS),
                   "-t", "120s", "--host", f"grpc://{target}", "--max-requests", str(calls), "--no-audit",
                   "--csv", prefix, "--only-summary", "--loglevel", "WARNING", *extra]  # fmt: skip
        cpu, wall, _ = _measure(command)
        with open(f"{prefix}_stats.csv") as handle:
            aggregated = [row for row in csv.DictReader(handle) if row["Name"] == "Aggregated"][0]
        made = int(aggregated["Request Count"])
        if made != calls:
            raise RuntimeError(f"{locustfile}: --max-requests {calls} made {made} calls")
        return Measured(calls, cpu, calls / float(aggregated["Requests/s"]))


def marginal(small: Measured, large: Measured) -> float:
    """CPU-µs per call between two runs of the same client."""
    return (large.cpu - small.cpu) / (large.calls - small.calls) * 1e6


def cheapest(rounds: list[tuple[Measured, Measured]]) -> tuple[float, Measured]:
    """The lowest CPU-µs per call over the rounds, with that round's large run."""
    return min(((marginal(small, large), large) for small, large in rounds), key=lambda pair: pair[0])


def compare(target: str, server: str) -> list[tuple]:
    """The suite against a bare grpc.aio loop on ``target``, WriteLog and batches of 1000; print the table."""
    print(f"server: {server} on {target} (core {SERVER_CORE}); clients pinned to core {CLIENT_CORE}, "
          f"{USERS} concurrent callers; the clients alternate, each keeps its cheapest of {REPEATS} rounds")
    rows = []
    for label, batch, n1, n2 in (("WriteLog", 0, 4000, 24000), ("BatchWriteLog x1000", 1000, 40, 240)):
        locustfile = "locustfiles/single.py" if not batch else "locustfiles/batch.py"
        extra = ["--batch-size", str(batch)] if batch else []
        bare_rounds, suite_rounds = [], []
        for _ in range(REPEATS):
            bare_rounds.append((bare_aio(target, n1, batch), bare_aio(target, n2, batch)))
            suite_rounds.append((suite(target, locustfile, n1, extra), suite(target, locustfile, n2, extra)))
        (bare_us, bare_run), (ours_us, ours_run) = cheapest(bare_rounds), cheapest(suite_rounds)
        rows.append((label, batch or 1, bare_us, ours_us, bare_run, ours_run))
    print(f"{'call':<22}{'client':<26}{'CPU-µs/call':>12}{'CPU-µs/log':>12}{'calls/s':>10}{'logs/s':>10}")
    for label, logs, bare_us, ours_us, bare_run, ours_run in rows:
        for name, cpu_us, run in (("bare grpc.aio loop", bare_us, bare_run), ("suite (Locust)", ours_us, ours_run)):
            rate = run.calls / run.wall
            print(f"{label:<22}{name:<26}{cpu_us:>12.1f}{cpu_us / logs:>12.2f}{rate:>10.0f}{rate * logs:>10.0f}")
        print(f"{label:<22}{'ratio suite / bare':<26}{ours_us / bare_us:>12.2f}")
    return rows


def main() -> None:
    # Client CPU is measured, not storage: the server discards at flush, so its queue never fills over the rounds.
    server_args = ["--queue-size", "1000000", "--flush-batch", "1000", "--flush-period", "0.5", "--drop-rate", "1"]
    with start_server_process(*server_args, cpu_core=SERVER_CORE) as server:
        single, batch = compare(server.target, "reference_server")
    print(f"target: single WriteLog ratio <= 1.30 -> {single[3] / single[2]:.2f}; "
          f"batch of 1000 <= 7 CPU-µs/log -> {batch[3] / batch[1]:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
