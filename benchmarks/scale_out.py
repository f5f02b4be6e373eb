"""Scale-out: the single workload with Locust's ``--processes 1`` and ``--processes 2``, one server, one run.

``--processes N`` forks N workers under a master, so both runs pay for the master. CPU per call is
differential, as in ``cpu_per_call``: CPU(N2 calls) - CPU(N1 calls) over N2 - N1 cancels start-up
(imports, forks) and shut-down, exact because ``--max-requests`` is a total over the workers. The
Locust tree's CPU is read from RUSAGE_CHILDREN: the master waits for its workers before it exits,
so their usage is in its own when it is reaped. The server's CPU is read with psutil. Nothing is
pinned: the server and every Locust process share this machine's cores, which caps the speed-up.
Each configuration runs ``REPEATS`` times in alternation; the pair with the most calls/s counts.
"""

from __future__ import annotations

import csv
import os
import resource
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psutil

from benchmarks.command_line import run_benchmark
from reference_server.process import start_server_process

ROOT = Path(__file__).resolve().parent.parent
USERS = 50
PROCESSES = (1, 2)
SMALL_CALLS, LARGE_CALLS = 4000, 24000
REPEATS = 2  # best of: one run of a few seconds on a shared 2-core machine is easily disturbed


@dataclass
class Run:
    """One headless Locust run: CPU seconds of the Locust tree and of the server, calls/s."""

    client_cpu: float
    server_cpu: float
    rate: float


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _process_cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def locust_run(target: str, server: psutil.Process, processes: int, calls: int) -> Run:
    """The single workload with ``--processes``, stopped by ``--max-requests calls``."""
    with tempfile.TemporaryDirectory() as folder:
        prefix = f"{folder}/scale"
        command = [sys.executable, "-m", "locust", "-f", "locustfiles/single.py", "--headless",
                   "-u", str(USERS), "-r", str(USERS), "-t", "60s", "--host", f"grpc://{target}",
                   "--processes", str(processes), "--master-bind-host", "127.0.0.1", "--max-requests", str(calls),
                   "--no-audit", "--csv", prefix,
                   "--only-summary", "--loglevel", "WARNING"]  # fmt: skip
        client_before, server_before = _children_cpu(), _process_cpu(server)
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)
        client_cpu, server_cpu = _children_cpu() - client_before, _process_cpu(server) - server_before
        if done.returncode != 0:
            detail = done.stderr.strip()[-500:]
            raise RuntimeError(f"--processes {processes} exited {done.returncode}: {detail}")
        with open(f"{prefix}_stats.csv") as handle:
            aggregated = [row for row in csv.DictReader(handle) if row["Name"] == "Aggregated"][0]
    made = int(aggregated["Request Count"])
    if made != calls:
        raise RuntimeError(f"--processes {processes}: --max-requests {calls} made {made} calls")
    return Run(client_cpu, server_cpu, float(aggregated["Requests/s"]))


def per_call_us(small: float, large: float) -> float:
    """Marginal CPU-µs per call between the small and the large run."""
    return (large - small) / (LARGE_CALLS - SMALL_CALLS) * 1e6


def measure(target: str, server: psutil.Process, processes: int) -> tuple[float, float, float]:
    """calls/s, Locust and server CPU-µs per call of one small and one large run."""
    small = locust_run(target, server, processes, SMALL_CALLS)
    large = locust_run(target, server, processes, LARGE_CALLS)
    return large.rate, per_call_us(small.client_cpu, large.client_cpu), per_call_us(small.server_cpu, large.server_cpu)


def table(target: str, server_pid: int, server: str) -> dict[int, tuple[float, float, float]]:
    """Print calls/s, CPU-µs per call (Locust and server) and the speed-up for 1 and 2 worker processes."""
    print(f"server: {server} on {target}; {os.cpu_count()} cores shared by the server, the Locust master and "
          f"its workers (nothing pinned); single workload, {USERS} users, --max-requests {SMALL_CALLS} and "
          f"{LARGE_CALLS}, best of {REPEATS}")  # fmt: skip
    server_process = psutil.Process(server_pid)
    measured: dict[int, list[tuple[float, float, float]]] = {processes: [] for processes in PROCESSES}
    for _ in range(REPEATS):
        for processes in PROCESSES:
            measured[processes].append(measure(target, server_process, processes))
    best = {processes: max(runs) for processes, runs in measured.items()}
    base_rate = best[PROCESSES[0]][0]
    print(f"{'processes':>9}{'calls/s':>10}{'Locust CPU-µs/call':>20}{'server CPU-µs/call':>20}"
          f"{'cores busy':>12}{'speed-up':>10}")  # fmt: skip
    for processes, (rate, client_us, server_us) in best.items():
        busy = (client_us + server_us) * rate / 1e6
        print(f"{processes:>9}{rate:>10.0f}{client_us:>20.1f}{server_us:>20.1f}{busy:>12.2f}"
              f"{rate / base_rate:>10.2f}")  # fmt: skip
    return best


def projection(best: dict[int, tuple[float, float, float]], cores: int = 16) -> str:
    """What a ``cores``-core generator reaches with a worker process per core but one (left to the master), from the
    CPU per call of one worker (optimistic: it had a core to itself) and of two (pessimistic: oversubscribed)."""
    rates = sorted(1e6 / client_us * (cores - 1) for _, client_us, _ in best.values())
    return (
        f"a {cores}-core generator ({cores - 1} worker processes, a core left for the master) would reach "
        f"{rates[0]:,.0f} to {rates[-1]:,.0f} WriteLog/s against a service that keeps up"
    )


def main() -> None:
    """Scale-out against the fast sink (the reference server when Go is missing)."""
    from benchmarks.fast_sink import running_sink

    with running_sink() as target:
        if target is not None:
            sink_target, sink_pid = target
            best = table(sink_target, sink_pid, "grpc-go sink (fixed replies)")
            print(projection(best))
            return
    server_args = ["--queue-size", "1000000", "--flush-batch", "1000", "--flush-period", "0.5"]
    with start_server_process(*server_args) as server:
        table(server.target, server.pid, "reference_server")
    print("Locust CPU includes the master; cores busy = (Locust + server CPU per call) x calls/s. "
          f"The server runs on the same {os.cpu_count()} cores: once they are busy, more worker processes "
          "cannot add calls/s.")  # fmt: skip


if __name__ == "__main__":
    sys.exit(run_benchmark(main, __doc__))
