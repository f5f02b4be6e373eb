"""Latency per RPC and outcome (OK, or the failure's cause), kept apart.

Locust's stats put a failed call's response time in the same distribution as the successes, so a
flood of fast RESOURCE_EXHAUSTED answers makes the service look fast. The suite keeps a
histogram per (name, outcome), bucketed like Locust's own (two significant digits), so memory is
bounded whatever the run's length; workers send theirs to the master with each stats report.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field

OK = "OK"
AGGREGATED = "Aggregated"
REPORT_KEY = "grpc_latency_split"
SERVICE_TIME_REPORT_KEY = "grpc_service_time"
HEADER = ("Name", "Outcome", "Count", "Average (ms)", "50%", "90%", "95%", "99%", "Max (ms)")
PERCENTILES = (0.5, 0.9, 0.95, 0.99)


def bucket(response_time: float) -> int:
    """Locust's rounding of response times: exact below 100 ms, two significant digits above."""
    if response_time < 100:
        return round(response_time)
    if response_time < 1000:
        return int(round(response_time, -1))
    if response_time < 10000:
        return int(round(response_time, -2))
    return int(round(response_time, -3))


@dataclass
class LatencySplit:
    """Histograms of response times keyed by (name, outcome)."""

    histograms: dict[tuple[str, str], dict[int, int]] = field(default_factory=dict)
    totals: dict[tuple[str, str], float] = field(default_factory=dict)
    _unreported: dict[tuple[str, str], dict[int, int]] = field(default_factory=dict)

    def record(self, name: str, outcome: str, response_time: float) -> None:
        """Count one call's response time under its outcome."""
        key, rounded = (name, outcome), bucket(response_time)
        for histograms in (self.histograms, self._unreported):
            histogram = histograms.get(key)
            if histogram is None:
                histogram = histograms[key] = {}
            histogram[rounded] = histogram.get(rounded, 0) + 1
        self.totals[key] = self.totals.get(key, 0.0) + response_time

    def take_report(self) -> list[list]:
        """Histograms since the last report, as msgpack-friendly lists (a worker's report)."""
        report = [[name, outcome, list(histogram.items())] for (name, outcome), histogram in self._unreported.items()]
        self._unreported = {}
        return report

    def merge_report(self, report: list[list]) -> None:
        """Add a worker's histograms (the master)."""
        for name, outcome, items in report:
            histogram = self.histograms.setdefault((name, outcome), {})
            for rounded, count in items:
                histogram[rounded] = histogram.get(rounded, 0) + count
                self.totals[(name, outcome)] = self.totals.get((name, outcome), 0.0) + rounded * count

    def reset(self) -> None:
        """Forget everything (a new test, or Reset Stats)."""
        self.histograms.clear()
        self.totals.clear()
        self._unreported.clear()

    def rows(self) -> list[tuple]:
        """One row per (name, outcome), then an Aggregated row per outcome over every name: count, average and
        percentiles in ms (``--max-p95-ok-ms`` reads the Aggregated OK row)."""
        merged: dict[str, dict[int, int]] = {}
        merged_totals: dict[str, float] = {}
        result = []
        for (name, outcome), histogram in sorted(self.histograms.items()):
            result.append(_row(name, outcome, histogram, self.totals.get((name, outcome), 0.0)))
            into = merged.setdefault(outcome, {})
            for value, times in histogram.items():
                into[value] = into.get(value, 0) + times
            merged_totals[outcome] = merged_totals.get(outcome, 0.0) + self.totals.get((name, outcome), 0.0)
        aggregated = [_row(AGGREGATED, outcome, merged[outcome], merged_totals[outcome]) for outcome in sorted(merged)]
        return result + aggregated


def _row(name: str, outcome: str, histogram: dict[int, int], total: float) -> tuple:
    count = sum(histogram.values())
    ordered = sorted(histogram.items())
    marks = [percentile(ordered, count, share) for share in PERCENTILES]
    return (name, outcome, count, round(total / count, 2), *marks, ordered[-1][0])


def percentile(ordered: list[tuple[int, int]], count: int, share: float) -> int:
    """The value below which ``share`` of ``count`` values lie, from a sorted histogram of (value, times)."""
    wanted, seen = share * count, 0
    for value, times in ordered:
        seen += times
        if seen >= wanted:
            return value
    return ordered[-1][0]


def write_latency_split(prefix: str, split: LatencySplit, suffix: str = "latency") -> str:
    """Write ``<prefix>_latency.csv`` (or ``<prefix>_<suffix>.csv``)."""
    path = f"{prefix}_{suffix}.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(split.rows())
    return path
