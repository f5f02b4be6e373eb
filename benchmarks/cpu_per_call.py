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

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from benchmarks.command_line import run_benchmark
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


def module_client(module: str, target: str, calls: int, batch_size: int) -> Measured:
    """A client of ``benchmarks.<module>`` (the bare grpc.aio loop, the bridge alone) making ``calls`` calls."""
    command = [sys.executable, "-m", f"benchmarks.{module}", "--target", target, "--calls", str(calls),
               "--concurrency", str(USERS), "--batch-size", str(batch_size)]  # fmt: skip
    cpu, wall, stdout = _measure(command)
    return Measured(calls, cpu, json.loads(stdout)["seconds"])


def locust_client(target: str, calls: int, locustfile: str, extra: list[str]) -> Measured:
    """A headless Locust run of ``locustfile`` that makes exactly ``calls`` calls (read from Locust's ``--json``)."""
    command = [sys.executable, "-m", "locust", "-f", locustfile, "--headless", "-u", str(USERS), "-r", str(USERS),
               "-t", "120s", "--host", f"grpc://{target}", "--json", "--loglevel", "WARNING", *extra]  # fmt: skip
    cpu, _, stdout = _measure(command)
    entries = json.loads(stdout)
    made = sum(entry["num_requests"] for entry in entries)
    if made != calls:
        raise RuntimeError(f"{locustfile}: {calls} calls asked, {made} made")
    first = min(entry["start_time"] for entry in entries)
    last = max(entry["last_request_timestamp"] for entry in entries)
    return Measured(calls, cpu, last - first)


def bridge_user(target: str, calls: int, batch_size: int) -> Measured:
    """Locust and a User on the bridge, one request event per call, none of the suite's bookkeeping."""
    extra = ["--calls", str(calls), "--bench-batch-size", str(batch_size)]
    return locust_client(target, calls, "benchmarks/locustfiles/bridge_user.py", extra)


def suite(target: str, calls: int, batch_size: int, before_hdr: bool = False, connections: int = 0,
          options: tuple[str, ...] = ()) -> Measured:  # fmt: skip
    """The suite's own workload (single or batch), stopped by ``--max-requests``; ``before_hdr``: its latency recorded
    as before the HDR histograms (``benchmarks.before_hdr``); ``connections``: ``--grpc-connections`` (0: not given);
    ``options``: more suite options."""
    locustfile = "locustfiles/batch.py" if batch_size else "locustfiles/single.py"
    if before_hdr:
        locustfile = f"benchmarks/locustfiles/before_hdr_{'batch' if batch_size else 'single'}.py"
    extra = ["--max-requests", str(calls), "--no-audit", *(["--batch-size", str(batch_size)] if batch_size else []),
             *(["--grpc-connections", str(connections)] if connections else []), *options]  # fmt: skip
    return locust_client(target, calls, locustfile, extra)


LAYERS: tuple[tuple[str, Callable[[str, int, int], Measured]], ...] = (
    ("bare grpc.aio loop", partial(module_client, "bare_aio")),
    ("bridge alone (greenlets)", partial(module_client, "bridge_alone")),
    ("Locust User on the bridge", bridge_user),
    ("suite, latency before HDR", partial(suite, before_hdr=True)),
    ("suite, --no-freshness", partial(suite, options=("--no-freshness",))),
    ("suite GrpcUser (Locust)", suite),
)
CALLS = (("WriteLog", 0, 4000, 24000), ("BatchWriteLog x1000", 1000, 40, 240))


def marginal(small: Measured, large: Measured) -> float:
    """CPU-µs per call between two runs of the same client."""
    return (large.cpu - small.cpu) / (large.calls - small.calls) * 1e6


def cheapest(rounds: list[tuple[Measured, Measured]]) -> tuple[float, Measured]:
    """The lowest CPU-µs per call over the rounds, with that round's large run."""
    return min(((marginal(small, large), large) for small, large in rounds), key=lambda pair: pair[0])


def compare(target: str, server: str, layers: tuple = LAYERS, calls: tuple = CALLS) -> dict[str, list]:
    """Every layer (the first one the bare loop the others are compared with) on ``target``, for each of ``calls``
    (WriteLog and batches of 1000): {call: [(layer, CPU-µs/call, run)]}; print the table."""
    print(
        f"server: {server} on {target} (core {SERVER_CORE}); clients pinned to core {CLIENT_CORE}, "
        f"{USERS} concurrent callers; the clients alternate, each keeps its cheapest of {REPEATS} rounds"
    )
    measured = {}
    for label, batch, n1, n2 in calls:
        rounds: dict[str, list] = {layer: [] for layer, _ in layers}
        for _ in range(REPEATS):
            for layer, client in layers:
                rounds[layer].append((client(target, n1, batch), client(target, n2, batch)))
        measured[label] = [(layer, *cheapest(rounds[layer])) for layer, _ in layers]
    print(f"{'call':<22}{'client':<28}{'CPU-µs/call':>12}{'x bare':>8}{'CPU-µs/log':>12}{'calls/s':>10}"
          f"{'logs/s':>10}")  # fmt: skip
    for (label, batch, _, _), rows in zip(calls, measured.values(), strict=True):
        bare_us = rows[0][1]
        for layer, cpu_us, run in rows:
            rate, logs = run.calls / run.wall, batch or 1
            print(f"{label:<22}{layer:<28}{cpu_us:>12.1f}{cpu_us / bare_us:>8.2f}{cpu_us / logs:>12.2f}"
                  f"{rate:>10.0f}{rate * logs:>10.0f}")  # fmt: skip
    return measured


def ratio(rows: list[tuple[str, float, Measured]]) -> float:
    """The full suite's CPU per call over the bare grpc.aio loop's."""
    return rows[-1][1] / rows[0][1]


def freshness_cost(rows: list[tuple[str, float, Measured]]) -> float:
    """The freshness probe's share of the suite's CPU per call: the suite over the suite with ``--no-freshness``."""
    return rows[-1][1] / rows[-2][1] - 1


def main() -> None:
    # Client CPU is measured, not storage: the server discards at flush, so its queue never fills over the rounds.
    server_args = ["--queue-size", "1000000", "--flush-batch", "1000", "--flush-period", "0.5", "--drop-rate", "1"]
    with start_server_process(*server_args, cpu_core=SERVER_CORE) as server:
        measured = compare(server.target, "reference_server")
    batch_rows = measured["BatchWriteLog x1000"]
    print(f"target: single WriteLog ratio <= 1.30 -> {ratio(measured['WriteLog']):.2f}; "
          f"batch of 1000 <= 7 CPU-µs/log -> {batch_rows[-1][1] / 1000:.2f}")  # fmt: skip
    print(f"freshness probe (suite over suite --no-freshness): WriteLog "
          f"{freshness_cost(measured['WriteLog']):+.1%}, batch of 1000 "
          f"{freshness_cost(measured['BatchWriteLog x1000']):+.1%} CPU per call")  # fmt: skip


if __name__ == "__main__":
    sys.exit(run_benchmark(main, __doc__))
