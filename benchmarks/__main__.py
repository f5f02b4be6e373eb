"""``make bench``: every benchmark of the suite; each measures what it compares in one run."""

from __future__ import annotations

import importlib
import sys

from benchmarks.command_line import run_benchmark

SECTIONS = (
    ("CPU per call: the suite vs a bare grpc.aio loop, against the reference server", "benchmarks.cpu_per_call"),
    ("CPU per call against a fast grpc-go sink (never the bottleneck)", "benchmarks.fast_sink"),
    ("CPU per call with --grpc-connections 1 and 4, against the fast sink", "benchmarks.connections"),
    ("Scale-out: calls/s and CPU per call with 1 and 2 worker processes", "benchmarks.scale_out"),
    ("Open model: --arrival-rate against a slow and a stalling service", "benchmarks.open_model"),
    ("Reference server throughput", "benchmarks.server_throughput"),
    ("Report speed: one hour of full history, three RPCs", "benchmarks.report_speed"),
)


def main() -> int:
    """Run every section; a failing section is reported and makes the exit code non-zero."""
    failed = []
    for title, module in SECTIONS:
        print(f"\n== {title} ==", flush=True)
        try:
            importlib.import_module(module).main()
        except Exception as error:  # a broken section must not hide the others' figures
            print(f"FAILED: {type(error).__name__}: {error}", flush=True)
            failed.append(module)
        sys.stdout.flush()
    if failed:
        print(f"\nfailed sections: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run_benchmark(main, __doc__))
