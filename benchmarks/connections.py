"""CPU per call with ``--grpc-connections`` 1 and 4, beside a bare grpc.aio loop, in one run against the fast sink.

More connections must not make a call dearer: each user keeps to one channel chosen when it starts, so a call
pays nothing for the choice. Same method as ``benchmarks.cpu_per_call`` (differential, alternating, cheapest
round), WriteLog only.
"""

from __future__ import annotations

import sys
from functools import partial

from benchmarks.command_line import run_benchmark
from benchmarks.cpu_per_call import CALLS, SERVER_CORE, compare, module_client, suite
from benchmarks.fast_sink import running_sink

LAYERS = (
    ("bare grpc.aio loop", partial(module_client, "bare_aio")),
    ("suite, 1 connection", partial(suite, connections=1)),
    ("suite, 4 connections", partial(suite, connections=4)),
)


def main() -> None:
    """The bare loop and the suite with 1 and 4 connections against the sink, one table."""
    with running_sink(SERVER_CORE) as sink:
        if sink is None:
            return
        rows = compare(sink[0], "grpc-go sink (fixed replies)", LAYERS, CALLS[:1])["WriteLog"]
        bare, one, four = (cpu_us for _, cpu_us, _ in rows)
        print(f"--grpc-connections 4 over 1: {four / one:.2f} (x bare: {one / bare:.2f} and {four / bare:.2f})")


if __name__ == "__main__":
    sys.exit(run_benchmark(main, __doc__))
