"""Latency per RPC and outcome (OK, or the failure's cause), kept apart, in HDR histograms.

Locust's stats put a failed call's response time in the same distribution as the successes, so a
flood of fast RESOURCE_EXHAUSTED answers makes the service look fast; they also round it to two
significant digits. The suite records every call in ``grpc_user.histograms.LatencyHistograms``
(1 µs resolution, 3 significant digits, constant memory); workers send theirs, encoded, with each
stats report and the master adds them exactly.

``<prefix>_latency.csv``       Name,Outcome,Count,Average (ms),50%,90%,95%,99%,Max (ms),Min (ms): ms, µs decimals
``<prefix>_service_time.csv``  the same, from sending each call to its answer (open model only)
``<prefix>_histograms.json``   every histogram in HdrHistogram's standard encoding (``grpc_user.histograms``)
"""

from __future__ import annotations

import csv

from grpc_user.histograms import (
    AGGREGATED,
    HISTOGRAMS_FILE_SUFFIX,
    OK,
    LatencyHistograms,
    write_histograms_file,
)

__all__ = ["AGGREGATED", "OK", "REPORT_KEY", "SERVICE_TIME_REPORT_KEY", "write_histograms", "write_latency_split"]

REPORT_KEY = "grpc_latency_split"
SERVICE_TIME_REPORT_KEY = "grpc_service_time"
HEADER = ("Name", "Outcome", "Count", "Average (ms)", "50%", "90%", "95%", "99%", "Max (ms)", "Min (ms)")


def write_latency_split(prefix: str, histograms: LatencyHistograms, suffix: str = "latency") -> str:
    """Write ``<prefix>_latency.csv`` (or ``<prefix>_<suffix>.csv``): one row per (name, outcome), then an
    Aggregated row per outcome over every name (``--max-p95-ok-ms`` reads the Aggregated OK row)."""
    path = f"{prefix}_{suffix}.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for name, outcome, summary in histograms.rows():
            marks = [f"{summary.percentiles_ms[share]:.3f}" for share in sorted(summary.percentiles_ms)]
            writer.writerow((name, outcome, summary.count, f"{summary.mean_ms:.3f}", *marks,
                             f"{summary.max_ms:.3f}", f"{summary.min_ms:.3f}"))  # fmt: skip
    return path


def write_histograms(prefix: str, metrics: dict[str, LatencyHistograms]) -> str:
    """Write ``<prefix>_histograms.json``: the run's full histograms, from which reports recompute any percentile."""
    return write_histograms_file(f"{prefix}{HISTOGRAMS_FILE_SUFFIX}", metrics)
