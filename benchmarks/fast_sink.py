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
from pathlib import Path

from benchmarks.cpu_per_call import SERVER_CORE, compare

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


def main() -> None:
    """Both clients against the sink, one table."""
    binary = build()
    if binary is None:
        return
    sink = subprocess.Popen([str(binary)], stdout=subprocess.PIPE, text=True,
                            preexec_fn=lambda: os.sched_setaffinity(0, {SERVER_CORE}))  # fmt: skip
    try:
        target = sink.stdout.readline().strip()
        single, batch = compare(target, "grpc-go sink (fixed replies)")
        print(f"target: single WriteLog ratio <= 1.30 -> {single[3] / single[2]:.2f}; "
              f"batch of 1000 <= 1.15 -> {batch[3] / batch[2]:.2f}")  # fmt: skip
    finally:
        sink.kill()
        sink.wait(10)


if __name__ == "__main__":
    sys.exit(main())
