"""The freshness figures, the lines that tell them, and what the run files hold of them.

``figures`` is what ``grpc_user.run_files`` writes to ``<prefix>_freshness.csv`` and ``<prefix>_freshness.json``;
``latency_figures`` of the samples acknowledged in each second go to ``<prefix>_freshness_history.csv``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from grpc_user.histograms import Latencies
from grpc_user.locust.freshness.probe import FreshnessProbe
from grpc_user.run_files.freshness_words import (
    can_raise,
    coarse,
    coverage,
    failing,
    poll_wait,
    polls_waited,
    reserve_cause,
    sampled,
)
from grpc_user.run_files.schema import WIDER_THAN_ASKED

# The polls of a freshness SLO are said to have come further apart than due beyond this many times its gap (the loop
# rounds a gap up by a few ms).
SLO_GAP_SLACK = 1.2


def figures(probe: FreshnessProbe, sample_rate: float, status: str = "running", with_histograms: bool = True,
            phases_ran: Mapping[int, int] | None = None,
            test_span: tuple[float, float] | None = None) -> dict[str, Any]:  # fmt: skip
    """Visibility latency per request name and aggregated, in ms; ``status``: running, done, or error.

    Shape: ``{"status", "sample_rate", "poll_interval_ms", "query_share_percent", "slo_poll_interval_ms" (None
    without a freshness SLO), "max_poll_gap_ms", "slowest_query_ms", "asked", "sampling_limited",
    "sampling_reserved_at_s", "held_back", "held_released", "flush_cycle_ms", "precise_window_at_s", "acked_from_s",
    "acked_to_s", "test_s", "taken",
    "samples", "visible", "pending", "never_visible", "never_visible_samples": [...], "unknown",
    "unknown_samples": [...], "unknown_because", "never_visible_because",
    "by_name": {name: {"samples", "visible", "never_visible", "unknown", "p50", "p95", "p99", "max",
    "max_poll_gap_ms"}}, "aggregated":
    {...}, "probe_queries", "probe_query_failures", "error", "histograms": [[name, "OK",
    encoded, min_us, max_us], ...]}`` (``grpc_user.histograms``' encoding). ``max_poll_gap_ms``: the measured
    error bound, the largest time between a found sample's last look without it (or its acknowledgement) and the
    query that found it; each figure is late by at most that much (``poll_interval_ms`` is only the shortest gap
    asked for); ``slowest_query_ms``: the longest one of the probe's QueryLog calls took to return (None before
    any), as a poll waits for the one before it; ``poll_lateness_ms``: the longest a poll for current samples
    started after it was free to go, due and let go by the pacing (that wait and the event loop's, never the query
    share's hold; None before any query). ``asked``: the samples the
    sample rate asked for over the test (each process its share); ``asked_unsampled``: those of them asked while
    the probe did not sample;
    ``sampling_limited``: the query share's rate took fewer (``samples``), in windows; ``sampling_reserved_at_s``:
    how many seconds into the test sampling all the time stopped for good to keep the rest of the share for its
    samples after the stop (None: it did not); ``held_back``: samples taken and
    not counted in any figure or count (the learning samples, and a coarse window's when a finer one measured);
    ``held_released``: the figures are such a coarse window's (the learning's flush cycle), counted at the end as no
    window at the poll interval counted any; ``flush_cycle_ms``: the store's flush cycle as learnt (None: not
    learnt, or a store slower than the load); ``precise_window_at_s``: when (s into the test) the first window of a
    store that keeps up opened, or before it did, when the share was last expected to pay for one at the poll
    interval (None: not known); ``acked_from_s``, ``acked_to_s``: when (s
    into the test) the first and last counted sample found was acknowledged, the part of the run the figures cover,
    and ``test_s`` the test's length (``test_span``: its start and stop, epoch s; each None when not known);
    ``taken``: every sample taken, counted or held back (or held, not settled yet); ``unacknowledged``: samples due
    on calls the service did not acknowledge whole, never taken; ``failing_since_s``: seconds into the test of the
    first sampled call not acknowledged after the latest acknowledged one (``last_acked_s``), when none after it
    was (None: the latest was), the last failing with ``failing_status`` (``UNAVAILABLE``, ...).
    ``lost_workers``: ``[{"worker", "last_report_s"}]``, the workers lost before their final report (a master's),
    ``lost_pending``: the samples they still looked for (in ``pending``, never found); what the rate asked of them
    after their last report is not in ``asked``. ``samples``: those
    counted, each ``visible``, ``pending``, ``never_visible`` or ``unknown`` (the four add up to it, on a master as
    its workers last reported; Reset Stats restarts the counts, not the pending samples).
    With no visible sample,
    ``p50``..``max`` and ``max_poll_gap_ms`` are None: no figure. Unknown samples were still pending when the looking
    was cut short (``unknown_because``); never visible ones when the service had settled, or stored nothing while
    the audit waited (``never_visible_because``: why, '' for a settled audit). With ``--action``,
    ``"phases": [{"phase", "samples", "visible", "never_visible", "unknown", "p50", "p95", "p99", "max",
    "max_poll_gap_ms", "no_sample_because"}, ...]``: the same figures of the logs sent in each phase (phase N: after
    the Nth action started), a row for every phase that ran (``phases_ran``: phase -> logs acknowledged in it) even
    without a sample, its figures then None and ``no_sample_because`` saying why ('' in a row with a sample). Each
    row's ``max_poll_gap_ms`` is its own samples' largest gap, the row's error bound.
    """
    never, unknown = probe.by_name(probe.never_visible), probe.by_name(probe.unknown)
    by_name: dict[str, dict[str, Any]] = {}
    for name in sorted(set(probe.samples) | set(probe.histograms.names()) | set(never) | set(unknown)):
        by_name[name] = _row_figures(probe.samples.get(name, 0), never.get(name, 0), unknown.get(name, 0),
                                     probe.histograms.combined(name=name), probe.poll_gaps.get(name))  # fmt: skip
    aggregated = _row_figures(sum(probe.samples.values()), len(probe.never_visible), len(probe.unknown),
                              probe.histograms.combined(), probe.max_poll_gap)  # fmt: skip
    longest, reserved = probe.longest_poll_gap(), probe.sampling_reserved_at
    started, stopped = test_span if test_span is not None and test_span[1] > test_span[0] > 0 else (0.0, 0.0)
    covered = stopped > 0 and probe.acked_last >= probe.acked_first
    return {
        "status": "error" if probe.error and probe.queries <= probe.query_failures else status,
        "sample_rate": sample_rate,
        "poll_interval_ms": round(probe.poll_interval * 1000, 3),
        "query_share_percent": probe.query_share,
        "slo_poll_interval_ms": None if math.isinf(longest) else round(longest * 1000, 3),
        "max_poll_gap_ms": aggregated["max_poll_gap_ms"],
        "slowest_query_ms": round(probe.slowest_query * 1000, 3) if probe.queries else None,
        "poll_lateness_ms": round(probe.poll_lateness * 1000, 3) if probe.queries else None,
        "asked": round(probe.asked),
        "asked_unsampled": round(probe.asked_unsampled),
        "sampling_limited": probe.sampling_limited,
        "sampling_reserved_at_s": None if reserved is None else round(reserved, 1),
        "held_back": probe.held_back,
        "held_released": probe.held_released,
        "flush_cycle_ms": round(probe.flush_cycle * 1000) if probe.flush_cycle else None,
        "precise_window_at_s": None if math.isinf(probe.precise_window_at) else round(probe.precise_window_at, 1),
        "acked_from_s": round(max(probe.acked_first - started, 0.0), 1) if covered else None,
        "acked_to_s": round(max(probe.acked_last - started, 0.0), 1) if covered else None,
        "test_s": round(stopped - started, 1) if stopped > 0 else None,
        "taken": aggregated["samples"] + probe.held_back + len(probe.held),
        "unacknowledged": probe.unacknowledged,
        "failing_since_s": None if probe.failing_since is None else round(probe.failing_since, 1),
        "failing_status": probe.failing_status,
        "last_acked_s": round(probe.last_acked, 1),
        "lost_workers": [
            {"worker": worker, "last_report_s": round(at, 1)} for worker, at in probe.lost_workers.items()
        ],
        "lost_pending": probe.lost_pending,
        "samples": aggregated["samples"],
        "visible": aggregated["visible"],
        "pending": probe.counted_pending(),
        "never_visible": len(probe.never_visible),
        "never_visible_samples": probe.named(probe.never_visible),
        "unknown": len(probe.unknown),
        "unknown_samples": probe.named(probe.unknown),
        "unknown_because": probe.unknown_because,
        "never_visible_because": probe.never_visible_because,
        "by_name": by_name,
        "aggregated": aggregated,
        "phases": _phase_figures(probe, phases_ran or {}),
        "probe_queries": probe.queries,
        "probe_query_failures": probe.query_failures,
        "error": probe.error,
        "histograms": probe.histograms.encode() if with_histograms else [],
    }


def _phase_figures(probe: FreshnessProbe, phases_ran: Mapping[int, int]) -> list[dict[str, Any]]:
    """A row per phase that ran or has a sample (the probe keys phases by their text, ``metadata.phase``)."""
    never, unknown = probe.by_phase(probe.never_visible), probe.by_phase(probe.unknown)
    phases = set(probe.phase_samples) | set(probe.phases.names()) | set(never) | set(unknown)
    rows = []
    for phase in sorted({int(phase) for phase in phases} | set(phases_ran)):
        key = str(phase)
        row = _row_figures(probe.phase_samples.get(key, 0), never.get(key, 0), unknown.get(key, 0),
                           probe.phases.combined(name=key), probe.phase_poll_gaps.get(key))  # fmt: skip
        because = "" if row["samples"] else no_sample_because(probe, phases_ran.get(phase, 0))
        rows.append({"phase": phase, **row, "no_sample_because": because})
    return rows


def no_sample_because(probe: FreshnessProbe, acked: int) -> str:
    """Why a phase that ran has no sample, ``acked`` logs acknowledged in it: none acknowledged, the query share
    paid for no sampling window while it ran, or its logs fell between the sample rate's samples."""
    if not acked:
        return "no log sent in it was acknowledged"
    if probe.sampling_limited:
        return f"--freshness-query-share {probe.query_share:g}% paid for no sampling window while it ran"
    if probe.sampling_reserved_at is not None:
        return reserve_cause(probe.sampling_reserved_at, probe.query_share, probe.found_any())
    return f"none of its {acked:,} acknowledged logs fell due for a sample (--freshness-sample-rate)"


def _row_figures(samples: int, never_visible: int, unknown: int, latencies: Latencies,
                 poll_gap: float | None) -> dict[str, Any]:  # fmt: skip
    """A row's figures and its own measured error bound, ``max_poll_gap_ms`` (None without a visible sample)."""
    figures = {"samples": samples, "never_visible": never_visible, "unknown": unknown, **latency_figures(latencies)}
    figures["max_poll_gap_ms"] = round(poll_gap * 1000, 3) if figures["visible"] and poll_gap is not None else None
    return figures


def latency_figures(latencies: Latencies) -> dict[str, Any]:
    """``visible`` (count), ``p50``, ``p95``, ``p99``, ``max`` in ms (µs decimals), within the exact min and max;
    each None when no sample became visible (no figure without a sample: 0 ms would read as the freshest run)."""
    if not latencies.count:
        return {"visible": 0, "p50": None, "p95": None, "p99": None, "max": None}
    summary = latencies.summary((50.0, 95.0, 99.0))
    marks = summary.percentiles_ms
    return {"visible": summary.count, "p50": marks[50.0], "p95": marks[95.0], "p99": marks[99.0],
            "max": summary.max_ms}  # fmt: skip


def shown_ms(value: float | None) -> str:
    """A figure in whole ms for a line of text (``1,057``), ``n/a`` when there is none (no visible sample)."""
    return "n/a" if value is None else f"{value:,.0f}"


def summary_line(data: dict[str, Any]) -> str:
    """One line for the console: the aggregated figures, the error bound, the samples never visible."""
    if data["status"] == "error":
        return f"Freshness: not measured, the probe's QueryLog failed: {data['error']}"
    row = data["aggregated"]
    line = "Freshness (visibility latency, acknowledgement to the first QueryLog that returns the log): "
    if row["visible"]:
        line += (f"{row['visible']:,} of {row['samples']:,} samples visible, p50 {shown_ms(row['p50'])} ms, "
                 f"p95 {shown_ms(row['p95'])} ms, p99 {shown_ms(row['p99'])} ms, max {shown_ms(row['max'])} ms "
                 f"({error_bound(data)}){coarse(data)}{coverage(data)}")  # fmt: skip
    else:
        line += f"0 of {row['samples']:,} samples visible: no figure (p50, p95, p99, max n/a)"
    line += sampled(data)
    if data["never_visible"]:
        because = data.get("never_visible_because")
        line += f"; {data['never_visible']:,} never visible by the end of the audit{f': {because}' if because else ''}"
    if data.get("unknown"):
        line += f"; {data['unknown']:,} unknown (not looked for long enough: {data['unknown_because']})"
    return line


def error_bound(data: dict[str, Any]) -> str:
    """The figures' measured error bound in words: the largest gap between the polls that saw a sample."""
    gap = data["max_poll_gap_ms"]
    measured = (f"late by at most {gap:,.0f} ms, the largest gap between the polls that saw a sample"
                if gap is not None else "no error bound yet: no poll saw a sample")  # fmt: skip
    line = f"{measured}; polls at least {data['poll_interval_ms']:,.10g} ms apart and "
    slo_gap = data.get("slo_poll_interval_ms")
    if slo_gap:  # the SLO's polls are not bounded by the share: say so, not "at most"
        line += (f"due every {slo_gap:,.10g} ms for the freshness SLO, whatever --freshness-query-share "
                 f"{data.get('query_share_percent', 1.5):g}%")  # fmt: skip
        if gap is not None and gap > SLO_GAP_SLACK * slo_gap:
            line += polls_waited(data, gap)
    else:
        line += f"at most {data.get('query_share_percent', 1.5):g}% of the calls{poll_wait(data)}"
    return line + share_bound(data)


def share_bound(data: dict[str, Any]) -> str:
    """Why the measured bound is wider than the poll interval asked for, when the query share limited the probe
    (``--freshness-poll-interval 0.02`` at 100 calls/s: 377 ms), and what to raise (never the share at its maximum:
    the call rate limited it then); '' otherwise."""
    gap, interval = data.get("max_poll_gap_ms"), data["poll_interval_ms"]
    if not data.get("sampling_limited") or gap is None or gap <= WIDER_THAN_ASKED * interval:
        return ""
    if coarse(data):  # a coarse window's figure: its own words say why and what to do
        return ""
    share = data.get("query_share_percent", 1.5)
    if not can_raise(share):  # a query per call: the call rate paid for no finer polls
        return (f"; the call rate paid for no polls {interval:,.10g} ms apart ({1000 / interval:,.0f} queries a second "
                f"while a sample is pending) at --freshness-query-share {share:g}%, its maximum: raise "
                "--freshness-poll-interval")  # fmt: skip
    return (f"; --freshness-query-share {share:g}% paid for no polls {interval:,.10g} ms apart ({1000 / interval:,.0f} "
            f"queries a second while a sample is pending): raise it for a bound nearer {interval:,.10g} ms, or raise "
            "--freshness-poll-interval")  # fmt: skip


def strip_sentence(data: dict[str, Any]) -> str:
    """The web UI's freshness figure beside the audit strip: p95 and max so far, samples, the error bound."""
    if data["status"] == "error":
        return f"Freshness: not measured ({data['error']})"
    row = data["aggregated"]
    never = f", {data['never_visible']:,} never visible" if data["never_visible"] else ""
    unknown = f", {data['unknown']:,} unknown" if data.get("unknown") else ""
    if not data["samples"] and data["status"] == "running":
        if data.get("failing_since_s") is not None:  # no window will find a sample while nothing is acknowledged
            return f"Freshness: no figure yet: the service acknowledged no call{failing(data)}"
        return f"Freshness: no figure yet: {first_window(data)}"
    if not row["visible"]:
        still = " yet" if data["status"] == "running" else ""
        return f"Freshness: {data['samples']:,} sampled logs, none visible{still}{never}{unknown}: no figure"
    return (f"Freshness: visible after p95 {row['p95']:,.0f} ms, max {row['max']:,.0f} ms ({row['visible']:,} of "
            f"{data['samples']:,} samples{never}{unknown}; late by at most "
            f"{data['max_poll_gap_ms']:,.0f} ms, the largest poll gap measured{coarse(data)}{coverage(data)}"
            f"{sampled(data)})")  # fmt: skip


def first_window(data: dict[str, Any]) -> str:
    """While a test runs without a counted sample: when its first figure is expected (the share pays for a window at
    the poll interval ``precise_window_at_s`` s into the test), or that the probe learns the store's pace first."""
    cycle = data.get("flush_cycle_ms")
    learnt = f"its flush cycle, {cycle:,.0f} ms, learnt" if cycle else "its pace learnt"
    at = data.get("precise_window_at_s")
    if at is None:
        return ("the probe learns the call rate and the store's pace and flush cycle first, from samples held back "
                "(not counted)")  # fmt: skip
    return (
        f"the first sampling window at the poll interval ({data['poll_interval_ms']:,.10g} ms) is expected about "
        f"{at:,.0f} s into the test, when --freshness-query-share {data.get('query_share_percent', 1.5):g}% of "
        f"the calls has paid for its polls (the store keeps up, {learnt} from samples held back, not counted)"
    )
