"""CPU per call against a server that is never the bottleneck: a grpc-go sink (``benchmarks/sink/main.go``)
answering every call at once with a fixed reply, on its own core. Against the Python reference server
both clients spend most of their CPU waiting and waking; here the client's own cost shows.

The sink is built from Debian's ``golang-go`` and ``golang-google-grpc-dev`` in GOPATH mode into a
cache folder outside the repository, once per source change.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.command_line import run_benchmark
from benchmarks.cpu_per_call import SERVER_CORE, compare, freshness_cost, ratio

SOURCE = Path(__file__).resolve().parent / "sink" / "main.go"
GOPATH = "/usr/share/gocode"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "grpc-log-loadtest"
INSTALL = "apt-get install golang-go golang-google-grpc-dev"


def build() -> Path | None:
    """The sink's binary, built when its source changed; None (and one line) when Go is missing."""
    if shutil.which("go") is None or not Path(GOPATH, "src/google.golang.org/grpc").is_dir():
        print(f"skipped: the fast sink needs Go and grpc-go from Debian ({INSTALL})")
        return None
    binary = CACHE / f"sink-{hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]}"
    if not binary.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        environment = {**os.environ, "GO111MODULE": "off", "GOPATH": GOPATH, "GOCACHE": str(CACHE / "go-build")}
        subprocess.run(["go", "build", "-o", str(binary), str(SOURCE)], cwd=SOURCE.parent, env=environment,
                       check=True, capture_output=True, timeout=300)  # fmt: skip
    return binary


@contextmanager
def running_sink(cpu_core: int | None = None) -> Iterator[tuple[str, int] | None]:
    """The sink running (on ``cpu_core`` alone when given): its target and pid; None when Go is missing."""
    binary = build()
    if binary is None:
        yield None
        return
    pin = (lambda: os.sched_setaffinity(0, {cpu_core})) if cpu_core is not None else None
    sink = subprocess.Popen([str(binary)], stdout=subprocess.PIPE, text=True, preexec_fn=pin)
    try:
        yield sink.stdout.readline().strip(), sink.pid
    finally:
        sink.kill()
        sink.wait(10)


def main() -> None:
    """Every layer against the sink, one table."""
    with running_sink(SERVER_CORE) as sink:
        if sink is None:
            return
        measured = compare(sink[0], "grpc-go sink (fixed replies)")
        print(f"target: single WriteLog ratio <= 1.30 -> {ratio(measured['WriteLog']):.2f}; "
              f"batch of 1000 <= 1.15 -> {ratio(measured['BatchWriteLog x1000']):.2f}")  # fmt: skip
        print(f"freshness probe (suite over suite --no-freshness): WriteLog "
              f"{freshness_cost(measured['WriteLog']):+.1%}, batch of 1000 "
              f"{freshness_cost(measured['BatchWriteLog x1000']):+.1%} CPU per call")  # fmt: skip


if __name__ == "__main__":
    sys.exit(run_benchmark(main, __doc__))
