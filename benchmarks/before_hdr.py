"""The suite's latency recording as it was before the HDR histograms, for ``make bench``'s before/after rows.

Until the HDR histograms, each call's latency went into two dicts keyed by Locust's two-significant-digit
rounding (the running histogram and the worker's unreported part) plus a running total. The benchmark
locustfiles ``benchmarks/locustfiles/before_hdr_{single,batch}.py`` put this recorder in place of the
suite's ``LatencyHistograms`` so one ``make bench`` run measures the suite's CPU per call with either.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from locust import events

from grpc_user.locust.run.state import suite_run


def _two_digits(response_time: float) -> int:
    """Locust's rounding of a response time (ms): exact below 100, two significant digits above."""
    if response_time < 100:
        return round(response_time)
    if response_time < 1000:
        return int(round(response_time, -1))
    if response_time < 10000:
        return int(round(response_time, -2))
    return int(round(response_time, -3))


class TwoDigitSplit:
    """The old recorder's hot path (``record``), a listener of the request event as the suite's ``LatencySplit`` is;
    nothing is reported or written from it."""

    def __init__(self) -> None:
        self.histograms: dict[tuple[str, str], dict[int, int]] = {}
        self.unreported: dict[tuple[str, str], dict[int, int]] = {}
        self.totals: dict[tuple[str, str], float] = {}

    def record(self, name: str, outcome: str, micros: int) -> None:
        """Count one call as the old code did (from ms; the client now hands µs)."""
        response_time = micros / 1000
        key, rounded = (name, outcome), _two_digits(response_time)
        for histograms in (self.histograms, self.unreported):
            histogram = histograms.get(key)
            if histogram is None:
                histogram = histograms[key] = {}
            histogram[rounded] = histogram.get(rounded, 0) + 1
        self.totals[key] = self.totals.get(key, 0.0) + response_time

    def on_request(self, request_type: str, name: str, response_time: float, response_length: int, response: Any = None,
                   context: Any = None, exception: Any = None, start_time: float | None = None, url: str | None = None,
                   call: Any = None, **_: Any) -> None:  # fmt: skip
        """Locust's request event, read as ``LatencySplit.on_request`` reads it."""
        if call is not None:
            self.record(name, call.cause, int(response_time * 1000 + 0.5))

    def reset(self) -> None:
        """Forget everything."""
        self.__init__()

    def rows(self) -> Iterator[Any]:
        """No summary: the benchmark reads CPU, not latency."""
        return iter(())


@events.init.add_listener
def _record_as_before(environment: Any, **_: Any) -> None:
    run = suite_run(environment)
    run.latency, run.service_time = TwoDigitSplit(), TwoDigitSplit()
