"""CI gates on the Aggregated figures of a run: thresholds, their argparse types, and the verdicts.

Latency gates read the suite's HDR histograms (``_histograms.json``: to the microsecond, so
``--max-p99-ms 0.8`` works) when the run has them, else Locust's rounded percentiles; the line says which.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

from grpc_user.run_files.schema import AGGREGATED, OK
from reports.figures import HDR, Figures


@dataclass
class Thresholds:
    """The gates asked for on the command line; None means not asked."""

    max_p95_ms: float | None = None
    max_failure_rate: float | None = None
    min_rps: float | None = None
    min_logs_per_second: float | None = None
    max_lost: int | None = None
    max_p95_ok_ms: float | None = None
    max_p50_ms: float | None = None
    max_p99_ms: float | None = None
    max_visibility_p95_ms: float | None = None


@dataclass
class GateResult:
    """One gate's verdict and the line that explains it."""

    option: str
    passed: bool
    line: str


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def non_negative(text: str) -> float:
    """argparse type: a finite number >= 0."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def fraction(text: str) -> float:
    """argparse type: a failure rate as a fraction from 0 to 1 (0.05 means 5 %)."""
    try:
        value = _number(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be a fraction from 0 to 1 (0.05 = 5%), got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a fraction from 0 to 1 (0.05 = 5%), got {text!r}")
    return value


def count(text: str) -> int:
    """argparse type: a whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}")
    return value


def _show(value: float) -> str:
    """An option's value as it is typed (``--max-p95-ms 25000``)."""
    return f"{value:.10g}"


def _figure(value: float) -> str:
    """A run's figure, thousands separated as the report prints it (``44,007.123``; ms to the microsecond)."""
    return f"{value:,.10g}"


def _at_most(option: str, label: str, actual: float, limit: float, unit: str = "") -> GateResult:
    passed = actual <= limit
    sign = "<=" if passed else ">"
    return GateResult(option, passed, f"{label} {_figure(actual)}{unit} {sign} {option} {_show(limit)}")


def _at_least(option: str, label: str, actual: float, limit: float) -> GateResult:
    passed = actual >= limit
    sign = ">=" if passed else "<"
    return GateResult(option, passed, f"{label} {_figure(actual)} {sign} {option} {_show(limit)}")


def _lost(figures: Figures, limit: int) -> GateResult:
    option = "--max-lost"
    audit = figures.audit
    if audit is None:
        return GateResult(option, False, f"{option} {limit}: no delivery audit in this run")
    if audit.get("status") in ("skipped", "error", "unsettled", "interrupted", "incomplete"):  # delivery unknown
        detail = f" ({audit['detail']})" if audit.get("detail") else ""
        return GateResult(option, False, f"{option} {limit}: the delivery audit status is {audit['status']}{detail}")
    most = audit.get("lost_max", audit["lost"])
    if most is None:  # nothing bounds the loss from above
        workers = audit.get("unreported_workers") or []
        why = "logs this run did not send carry its run id, and may stand in for lost ones"
        if workers:
            why = f"the final counts of {len(workers)} worker(s) never arrived, so acknowledged is only a lower bound"
        return GateResult(option, False, f"{option} {limit}: the most that may be lost is unknown (lost "
                          f"{audit.get('lost_min', audit['lost'])}..?): {why}")  # fmt: skip
    return _at_most(option, "lost (at most)", float(most), limit)


def _p95_ok(figures: Figures, limit: float) -> GateResult:
    """p95 of successful calls alone: fast failures cannot pull it down as they pull Locust's p95."""
    option = "--max-p95-ok-ms"
    latency = figures.latency
    ok = None if latency is None else latency[latency["Outcome"] == OK]
    if ok is None or ok.empty:
        why = "no _latency.csv in this run" if latency is None else "no successful call in _latency.csv"
        return GateResult(option, False, f"{option} {_show(limit)}: {why}")
    aggregated = ok[ok["Name"] == AGGREGATED]
    p95 = float(aggregated["95%"].iloc[-1]) if not aggregated.empty else float(ok["95%"].max())
    label = "p95 of successful calls" if not aggregated.empty else "p95 of successful calls (worst RPC)"
    return _at_most(option, label, p95, limit, " ms")


def _visibility_p95(figures: Figures, limit: float) -> GateResult:
    """p95 of visibility latency; with more than 5% of the samples never visible it is infinite. Breached without a
    figure that covers every sample: unknown samples (not looked for long enough) or none visible, as ``--max-lost``
    is on an unsettled audit; and without one that covers the whole run (a slow store's samples acknowledged only in
    its first part, or only in its last, ``Freshness.coverage``: visibility grew, unmeasured)."""
    option = "--max-visibility-p95-ms"
    fresh = figures.freshness
    if fresh is None or not fresh.samples:
        why = "no _freshness.csv in this run (--no-freshness?)" if fresh is None else "no sampled log"
        return GateResult(option, False, f"{option} {_show(limit)}: {why}")
    if fresh.unknown:
        because = fresh.unknown_because or "the looking was cut short"
        return GateResult(option, False, f"{option} {_show(limit)}: visibility unknown for {fresh.unknown} of "
                          f"{fresh.samples} samples (not looked for long enough: {because}); a p95 without them "
                          "covers only the samples found")  # fmt: skip
    p95 = fresh.p95_with_never_visible
    if p95 is None:
        return GateResult(option, False, f"{option} {_show(limit)}: no sampled log became visible (0 of "
                          f"{fresh.samples}): no visibility figure")  # fmt: skip
    because = f" ({fresh.never_visible_because})" if fresh.never_visible_because else ""
    never = f"{fresh.never_visible} of {fresh.samples} samples never visible{because}"
    if math.isinf(p95):  # beyond 5% never visible: no figure is the p95, not "inf ms"
        return GateResult(option, False, f"visibility latency p95 later than any figure: {never}, more than 5% > "
                          f"{option} {_show(limit)}")  # fmt: skip
    label = "visibility latency p95"
    if fresh.never_visible:
        label += f" ({never}, counted as later than any)"
    result = _at_most(option, label, p95, limit, " ms")
    if fresh.coverage and result.passed:  # a figure of a part of the run says nothing of the rest
        return GateResult(option, False, f"{result.line}, but{fresh.coverage.removeprefix(';')}: not a figure of the "
                          "whole run")  # fmt: skip
    return result


def evaluate(figures: Figures, thresholds: Thresholds) -> list[GateResult]:
    """Verdicts of the asked gates, on the Aggregated row (and the delivery audit for --max-lost)."""
    total = figures.aggregated
    results = []
    source = "HDR" if figures.latency_source == HDR else "Locust's"
    for option, label, value, limit in (("--max-p50-ms", "p50", total.p50, thresholds.max_p50_ms),
                                        ("--max-p95-ms", "p95", total.p95, thresholds.max_p95_ms),
                                        ("--max-p99-ms", "p99", total.p99, thresholds.max_p99_ms)):  # fmt: skip
        if limit is not None:
            actual = value if not math.isnan(value) else math.inf
            results.append(_at_most(option, f"{label} ({source}, all calls)", actual, limit, " ms"))
    if thresholds.max_failure_rate is not None:
        rate = total.failures / total.requests
        results.append(_at_most("--max-failure-rate", "failure rate", rate, thresholds.max_failure_rate))
    if thresholds.min_rps is not None:
        results.append(_at_least("--min-rps", "requests/s", total.rps, thresholds.min_rps))
    if thresholds.min_logs_per_second is not None:
        if total.logs_per_second is None:
            line = f"--min-logs-per-second {_show(thresholds.min_logs_per_second)}: no _logs.csv in this run"
            results.append(GateResult("--min-logs-per-second", False, line))
        else:
            results.append(
                _at_least("--min-logs-per-second", "logs/s", total.logs_per_second, thresholds.min_logs_per_second)
            )
    if thresholds.max_lost is not None:
        results.append(_lost(figures, thresholds.max_lost))
    if thresholds.max_p95_ok_ms is not None:
        results.append(_p95_ok(figures, thresholds.max_p95_ok_ms))
    if thresholds.max_visibility_p95_ms is not None:
        results.append(_visibility_p95(figures, thresholds.max_visibility_p95_ms))
    return results
