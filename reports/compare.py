"""A run against a baseline run: each key figure per RPC and aggregated, its change, regressions flagged.

A change is a regression when it goes the wrong way (less throughput, more latency or failures) by more
than ``TOLERANCE`` relative and more than the metric's absolute floor (1 ms for Locust's rounded
latencies, 10 µs when both runs have the suite's HDR histograms; 0.1 percentage point of failures), so
that noise between two equal runs is not flagged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from reports.figures import AGGREGATED, HDR, Figures, RpcFigures

TOLERANCE = 0.05
HDR_FLOOR_MS = 0.01
LATENCIES = ("p50", "p95", "p99")

# (label, attribute, higher is better, absolute floor)
METRICS = (
    ("requests/s", "rps", True, 0.0),
    ("logs/s", "logs_per_second", True, 0.0),
    ("failure %", "failure_pct", False, 0.1),
    ("p50 ms", "p50", False, 1.0),
    ("p95 ms", "p95", False, 1.0),
    ("p99 ms", "p99", False, 1.0),
)


@dataclass
class Change:
    """One figure of one RPC in both runs."""

    name: str
    metric: str
    baseline: float | None
    current: float | None
    regression: bool

    @property
    def delta(self) -> float | None:
        """Absolute change, current minus baseline."""
        if self.baseline is None or self.current is None:
            return None
        return self.current - self.baseline

    @property
    def percent(self) -> float | None:
        """Relative change in percent; None when the baseline is 0 or a side is missing."""
        if self.delta is None or not self.baseline:
            return None
        return 100.0 * self.delta / self.baseline


def _value(rpc: RpcFigures | None, attribute: str) -> float | None:
    if rpc is None:
        return None
    value = getattr(rpc, attribute)
    return None if value is None or math.isnan(value) else float(value)


def _is_regression(baseline: float | None, current: float | None, higher_is_better: bool, floor: float) -> bool:
    if baseline is None or current is None:
        return False
    worse = baseline - current if higher_is_better else current - baseline
    if worse <= floor:
        return False
    return baseline == 0 or worse / abs(baseline) > TOLERANCE


def compare(current: Figures, baseline: Figures) -> list[Change]:
    """Every key figure of every RPC found in either run (Aggregated last), with regressions flagged."""
    mine = {rpc.name: rpc for rpc in current.rpcs}
    theirs = {rpc.name: rpc for rpc in baseline.rpcs}
    names = sorted(set(mine) | set(theirs))
    mine[AGGREGATED], theirs[AGGREGATED] = current.aggregated, baseline.aggregated
    changes = []
    both_hdr = current.latency_source == baseline.latency_source == HDR
    for name in [*names, AGGREGATED]:
        for label, attribute, higher_is_better, floor in METRICS:
            floor = HDR_FLOOR_MS if both_hdr and attribute in LATENCIES else floor
            if attribute == "logs_per_second" and not (current.has_logs or baseline.has_logs):
                continue
            old, new = _value(theirs.get(name), attribute), _value(mine.get(name), attribute)
            changes.append(Change(name, label, old, new, _is_regression(old, new, higher_is_better, floor)))
    return changes


def regressions(changes: list[Change]) -> list[Change]:
    """The changes flagged as regressions."""
    return [change for change in changes if change.regression]
