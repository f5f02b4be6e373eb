"""Latency per RPC and outcome (OK, or the failure's cause), kept apart, in HDR histograms.

Locust's stats put a failed call's response time in the same distribution as the successes, so a
flood of fast RESOURCE_EXHAUSTED answers makes the service look fast; they also round it to two
significant digits. The suite records every call in ``grpc_user.histograms.LatencyHistograms``
(1 µs resolution, 3 significant digits, constant memory); workers send theirs, encoded, with each
stats report and the master adds them exactly. ``LatencySplit`` and ``ServiceTime`` are those histograms as
listeners of Locust's request event: each reads the call's ``CallRecord`` (``call=``).

``grpc_user.run_files`` writes them to ``<prefix>_latency.csv``, ``<prefix>_service_time.csv`` (the open model's
time from sending each call to its answer) and ``<prefix>_histograms.json``.
"""

from __future__ import annotations

from typing import Any

from grpc_user.histograms import Latencies, LatencyHistograms
from grpc_user.locust.counts.record import CallRecord

REPORT_KEY = "grpc_latency_split"
SERVICE_TIME_REPORT_KEY = "grpc_service_time"


class LatencySplit(LatencyHistograms):
    """Each call's latency under (name, ``OK`` or its failure's cause): Locust's ``response_time``, which in the open
    model counts from the call's scheduled start."""

    def on_request(self, request_type: str, name: str, response_time: float, response_length: int, response: Any = None,
                   context: Any = None, exception: Any = None, start_time: float | None = None, url: str | None = None,
                   call: CallRecord | None = None, **_: Any) -> None:  # fmt: skip
        """Locust's request event: record ``response_time`` (ms) in µs; events without ``call`` are not the suite's."""
        if call is not None:  # LatencyHistograms.record spelled out: this runs once per call
            latencies = self.by_key.get((name, call.cause))
            if latencies is None:
                latencies = self.by_key[(name, call.cause)] = Latencies()
            latencies.record(int(response_time * 1000 + 0.5))


class ServiceTime(LatencyHistograms):
    """Each call's service time (from sending it to its answer) under (name, outcome): the open model's second
    figure, beside the latency from the scheduled start."""

    def on_request(self, request_type: str, name: str, response_time: float, response_length: int, response: Any = None,
                   context: Any = None, exception: Any = None, start_time: float | None = None, url: str | None = None,
                   call: CallRecord | None = None, **_: Any) -> None:  # fmt: skip
        """Locust's request event: record ``call.service_us`` of a call that had a scheduled start and was sent."""
        if call is not None and call.scheduled:
            self.record(name, call.cause, call.service_us)
