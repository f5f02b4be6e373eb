"""The freshness figures and the files that hold them, next to Locust's ``--csv`` files.

``<prefix>_freshness.csv``          Name,Samples,Visible,Never Visible,50%,95%,99%,Max (ms),Poll Interval (ms)
                                    (one row per request name and an Aggregated row; visibility latency in ms)
``<prefix>_freshness_history.csv``  Timestamp,Name,Visible,50%,95%,99%,Max (ms): the samples found in each interval
``<prefix>_freshness.json``         the same figures, the samples never visible (counted and named), the probe's
                                    own QueryLog calls, and each name's HDR histogram (encoded, exact)
"""

from __future__ import annotations

import csv
import json
import os
import time
from typing import IO, Any

from grpc_user.histograms import Latencies
from grpc_user.locust.freshness.probe import FreshnessProbe

AGGREGATED = "Aggregated"
HEADER = ("Name", "Samples", "Visible", "Never Visible", "50%", "95%", "99%", "Max (ms)", "Poll Interval (ms)")
HISTORY_HEADER = ("Timestamp", "Name", "Visible", "50%", "95%", "99%", "Max (ms)")


def figures(probe: FreshnessProbe, sample_rate: float, status: str = "running",
            with_histograms: bool = True) -> dict[str, Any]:  # fmt: skip
    """Visibility latency per request name and aggregated, in ms; ``status``: running, done, or error.

    Shape: ``{"status", "sample_rate", "poll_interval_ms", "max_poll_gap_ms", "samples", "visible", "pending",
    "never_visible", "never_visible_samples": [...], "by_name": {name: {"samples", "visible", "never_visible",
    "p50", "p95", "p99", "max"}}, "aggregated": {...}, "probe_queries", "probe_query_failures", "error",
    "histograms": [[name, "OK", encoded, min_us, max_us], ...]}`` (``grpc_user.histograms``' encoding).
    """
    never = probe.never_visible_by_name()
    by_name: dict[str, dict[str, Any]] = {}
    for name in sorted(set(probe.samples) | set(probe.histograms.names()) | set(never)):
        by_name[name] = _row_figures(probe.samples.get(name, 0), never.get(name, 0),
                                     probe.histograms.combined(name=name))  # fmt: skip
    aggregated = _row_figures(sum(probe.samples.values()), len(probe.never_visible), probe.histograms.combined())
    return {
        "status": "error" if probe.error and not probe.queries else status,
        "sample_rate": sample_rate,
        "poll_interval_ms": round(probe.poll_interval * 1000, 3),
        "max_poll_gap_ms": round(probe.max_poll_gap * 1000, 3),
        "samples": aggregated["samples"],
        "visible": aggregated["visible"],
        "pending": probe.pending_count(),
        "never_visible": len(probe.never_visible),
        "never_visible_samples": probe.named_never_visible(),
        "by_name": by_name,
        "aggregated": aggregated,
        "probe_queries": probe.queries,
        "probe_query_failures": probe.query_failures,
        "error": probe.error,
        "histograms": probe.histograms.encode() if with_histograms else [],
    }


def _row_figures(samples: int, never_visible: int, latencies: Latencies) -> dict[str, Any]:
    return {"samples": samples, "never_visible": never_visible, **latency_figures(latencies)}


def latency_figures(latencies: Latencies) -> dict[str, Any]:
    """``visible`` (count), ``p50``, ``p95``, ``p99``, ``max`` in ms (µs decimals), within the exact min and max."""
    summary = latencies.summary((50.0, 95.0, 99.0))
    marks = summary.percentiles_ms
    return {"visible": summary.count, "p50": marks[50.0], "p95": marks[95.0], "p99": marks[99.0],
            "max": summary.max_ms if summary.count else 0.0}  # fmt: skip


def summary_line(data: dict[str, Any]) -> str:
    """One line for the console: the aggregated figures, the error bound, the samples never visible."""
    if data["status"] == "error":
        return f"Freshness: not measured, the probe's QueryLog failed: {data['error']}"
    row = data["aggregated"]
    line = (f"Freshness (visibility latency, acknowledgement to the first QueryLog that returns the log): "
            f"{row['visible']:,} of {row['samples']:,} samples visible, p50 {row['p50']:,.0f} ms, "
            f"p95 {row['p95']:,.0f} ms, p99 {row['p99']:,.0f} ms, max {row['max']:,.0f} ms "
            f"(late by at most the poll interval, {data['poll_interval_ms']:g} ms; largest gap "
            f"{data['max_poll_gap_ms']:,.0f} ms)")  # fmt: skip
    if data["never_visible"]:
        line += f"; {data['never_visible']:,} never visible by the end of the audit"
    return line


def strip_sentence(data: dict[str, Any]) -> str:
    """The web UI's freshness figure beside the audit strip: p95 and max so far, samples, the error bound."""
    if data["status"] == "error":
        return f"Freshness: not measured ({data['error']})"
    row = data["aggregated"]
    if not row["visible"]:
        return f"Freshness: {data['samples']:,} sampled logs, none visible yet"
    never = f", {data['never_visible']:,} never visible" if data["never_visible"] else ""
    return (f"Freshness: visible after p95 {row['p95']:,.0f} ms, max {row['max']:,.0f} ms ({row['visible']:,} of "
            f"{data['samples']:,} samples{never}; polled every {data['poll_interval_ms']:g} ms)")  # fmt: skip


def write_freshness(prefix: str, data: dict[str, Any]) -> list[str]:
    """Write ``<prefix>_freshness.csv`` and ``<prefix>_freshness.json`` from ``figures``; return their paths."""
    csv_path, json_path = f"{prefix}_freshness.csv", f"{prefix}_freshness.json"
    with open(csv_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        rows = [*data["by_name"].items(), (AGGREGATED, data["aggregated"])]
        for name, row in rows:
            writer.writerow((name, row["samples"], row["visible"], row["never_visible"], row["p50"], row["p95"],
                             row["p99"], row["max"], data["poll_interval_ms"]))  # fmt: skip
    partial = f"{json_path}.partial"
    with open(partial, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
    os.replace(partial, json_path)
    return [csv_path, json_path]


class FreshnessHistoryWriter:
    """Appends the samples found in each interval, per request name, to ``<prefix>_freshness_history.csv``."""

    def __init__(self, prefix: str) -> None:
        self.path = f"{prefix}_freshness_history.csv"
        self._handle: IO[str] | None = open(self.path, "w", newline="")
        csv.writer(self._handle).writerow(HISTORY_HEADER)
        self._handle.flush()

    def append(self, rows: dict[str, Latencies]) -> None:
        """One row per name found in the interval (``FreshnessProbe.take_interval``), stamped now."""
        if self._handle is None or not rows:
            return
        now = int(time.time())
        writer = csv.writer(self._handle)
        for name, latencies in rows.items():
            row = latency_figures(latencies)
            writer.writerow((now, name, row["visible"], row["p50"], row["p95"], row["p99"], row["max"]))
        self._handle.flush()

    def close(self) -> None:
        """Close the file (the rows already written stay)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
