"""The seeds' "concurrent test" summary of a run, as a JSON-ready dict (``python -m reports RUN --json``).

``total_count``/``success_count``/``failed_count`` count logs (sent, acknowledged, not acknowledged)
when the run has the suite's ``_logs.csv`` (a batch request carries many logs), else requests
(requests, requests without failure, failed requests); ``counted`` says which. ``logs_per_second`` is
``success_count`` per second of the run. ``requests``/``failed_requests``/``requests_per_second`` are
always Locust's Aggregated request figures. ``latency_ms`` comes from the suite's HDR histograms
(``latency_source`` "hdr", microsecond decimals) when the run has them, else from Locust's stats ("locust").
``exceptions`` counts what the locustfile's tasks raised (Locust's ``_exceptions.csv``: no request, so in no
other figure), in all and per message.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from reports.figures import Figures, figure_ms, no_sample_because
from reports.gates import GateResult


def _ms(value: float) -> float | None:
    return None if math.isnan(value) else value


def _freshness_row(row: pd.Series) -> dict[str, Any]:
    """One row of ``_freshness.csv`` in ``_freshness.json``'s shape (``by_name`` and ``phases``): counts, and
    p50/p95/p99/max and the row's largest poll gap (its error bound) in ms, None without a visible sample (the gap
    also in files written before the column)."""
    gap = row.get("Largest Poll Gap (ms)")
    return {"samples": int(row["Samples"]), "visible": int(row["Visible"]), "never_visible": int(row["Never Visible"]),
            "unknown": int(row.get("Unknown", 0)), "p50": figure_ms(row["50%"]), "p95": figure_ms(row["95%"]),
            "p99": figure_ms(row["99%"]), "max": figure_ms(row["Max (ms)"]),
            "max_poll_gap_ms": None if gap is None else figure_ms(gap)}  # fmt: skip


def _freshness(figures: Figures) -> dict[str, Any] | None:
    """Visibility latency in ms per RPC, per phase and aggregated (None without a visible sample), the samples never
    visible and unknown, the poll interval asked for and the measured error bound (the largest gap between the
    polls that saw a sample)."""
    fresh = figures.freshness
    if fresh is None:
        return None
    return {
        "visibility_latency_ms": {"p50": fresh.p50, "p95": fresh.p95, "p99": fresh.p99, "max": fresh.max_ms},
        "samples": fresh.samples,
        "visible": fresh.visible,
        "never_visible": fresh.never_visible,
        "never_visible_samples": fresh.never_visible_samples or [],
        "never_visible_because": fresh.never_visible_because,
        "unknown": fresh.unknown,
        "unknown_samples": fresh.unknown_samples or [],
        "unknown_because": fresh.unknown_because,
        "poll_interval_ms": fresh.poll_interval_ms,
        "max_poll_gap_ms": fresh.max_poll_gap_ms,
        "asked": fresh.asked,
        "asked_unsampled": fresh.asked_unsampled,
        "sampling_limited": fresh.sampling_limited,
        "sampling_reserved_at_s": fresh.sampling_reserved_at_s,
        "held_released": fresh.held_released,
        "flush_cycle_ms": fresh.flush_cycle_ms,
        "precise_window_at_s": fresh.precise_window_at_s,
        "acked_from_s": fresh.acked_from_s,
        "acked_to_s": fresh.acked_to_s,
        "test_s": fresh.test_s,
        "coverage": fresh.coverage.removeprefix("; "),
        "held_back": fresh.held_back,
        "taken": fresh.taken,
        "unacknowledged": fresh.unacknowledged,
        "failing_since_s": fresh.failing_since_s,
        "last_acked_s": fresh.last_acked_s,
        "failing_status": fresh.failing_status,
        "lost_workers": fresh.lost_workers,
        "lost_pending": fresh.lost_pending,
        "probe_queries": fresh.probe_queries,
        "by_name": {str(row["Name"]): _freshness_row(row) for _, row in fresh.rows.iterrows()},
        "phases": [
            {
                "phase": int(str(row["Name"]).split()[-1]),
                **_freshness_row(row),
                "no_sample_because": no_sample_because(row),
            }
            for _, row in fresh.phases.iterrows()
        ],  # fmt: skip
    }


def summary(figures: Figures, gates: list[GateResult]) -> dict[str, Any]:
    """Totals, rates, failures by cause with up to 3 sample messages, exceptions raised in tasks, the audit (or
    None) and the gates."""
    total = figures.aggregated
    if figures.logs_totals is not None:
        counted, sent, ok = "logs", figures.logs_totals["sent"], figures.logs_totals["acked"]
    else:
        counted, sent, ok = "requests", total.requests, total.requests - total.failures
    duration = figures.duration_seconds
    return {
        "run_id": figures.parameters.get("run id"),
        "counted": counted,
        "total_count": sent,
        "success_count": ok,
        "failed_count": sent - ok,
        "requests": total.requests,
        "failed_requests": total.failures,
        "duration_seconds": round(duration, 3),
        "logs_per_second": round(ok / duration, 3) if duration > 0 else None,
        "requests_per_second": round(total.rps, 3),
        "latency_source": figures.latency_source,
        "latency_ms": {
            "p50": _ms(total.p50),
            "p90": _ms(total.p90),
            "p95": _ms(total.p95),
            "p99": _ms(total.p99),
            "max": _ms(total.max_ms),
        },
        "error_summary": {c.cause: {"count": c.count, "samples": c.samples} for c in figures.causes},
        "exceptions": {
            "count": sum(count for count, _ in figures.exceptions),
            "by_message": [{"count": count, "message": message} for count, message in figures.exceptions],
        },
        "audit": figures.audit,
        "freshness": _freshness(figures),
        "gates": [{"option": g.option, "passed": g.passed, "line": g.line} for g in gates],
    }
