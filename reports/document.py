"""The report's content as sections of paragraphs, tables and charts: rendered alike to Markdown and HTML."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from reports.charts import Chart
from reports.compare import TOLERANCE, Change
from reports.figures import HDR, Figures, RpcFigures, no_sample_because

_FIGURE = re.compile(r"^([-+]?[\d,]+(\.\d+)?%?|n/a|)$")


@dataclass
class Table:
    """Headers and rows of text."""

    headers: list[str]
    rows: list[list[str]]

    def numeric(self, column: int) -> bool:
        """True when every cell of the column is a figure (right-aligned)."""
        return column > 0 and all(_FIGURE.match(row[column]) for row in self.rows)


Block = str | Table | Chart


@dataclass
class Section:
    """A titled part of the report."""

    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Document:
    """A whole report."""

    title: str
    sections: list[Section]


def count(value: int) -> str:
    """A count with thousands separators."""
    return f"{value:,}"


def rate(value: float | None) -> str:
    """A per-second rate, one decimal."""
    return "n/a" if value is None or math.isnan(value) else f"{value:,.1f}"


def ms(value: float | None) -> str:
    """Milliseconds: whole when whole (Locust rounds percentiles), else to the microsecond (0.317)."""
    if value is None or math.isnan(value):
        return "n/a"
    return f"{int(value):,}" if value == int(value) else f"{value:,.3f}"


def ms_with_unit(value: float | None) -> str:
    """``ms(value)`` and its unit, or ``n/a`` alone (``p50 n/a``, never ``p50 n/a ms``)."""
    shown = ms(value)
    return shown if shown == "n/a" else f"{shown} ms"


def latency_source(figures: Figures) -> str:
    """Whose percentiles the report shows, in a few words."""
    if figures.latency_source == HDR:
        return "the suite's HDR histograms, to the µs"
    return "Locust's percentiles, two significant digits"


def percent(value: float | None) -> str:
    """A percentage, two decimals."""
    return "n/a" if value is None or math.isnan(value) else f"{value:.2f}%"


def _signed(value: float | None, unit: str = "", decimals: int = 2) -> str:
    return "n/a" if value is None else f"{value:+,.{decimals}f}{unit}"


def _figure(metric: str, value: float | None) -> str:
    """A compared figure: latencies to the microsecond (``ms``), rates to one decimal."""
    return ms(value) if metric.endswith(" ms") else rate(value)


def _plain(value: Any) -> str:
    return " ".join(str(value).split())


def _parameters(figures: Figures, derived: bool) -> Section:
    rows = [[name, _plain(value)] for name, value in figures.parameters.items() if value not in (None, "")]
    source = (
        "Derived from the CSV files (no _run.json): duration from the history timestamps, users from "
        "the history's User Count."
        if derived
        else "From the run's _run.json."
    )
    return Section("Run", [Table(["parameter", "value"], rows), source])


def _rpc_row(rpc: RpcFigures, has_logs: bool) -> list[str]:
    logs = [rate(rpc.logs_per_second)] if has_logs else []
    return [
        rpc.name,
        count(rpc.requests),
        count(rpc.failures),
        percent(rpc.failure_pct),
        rate(rpc.rps),
        *logs,
        ms(rpc.p50),
        ms(rpc.p90),
        ms(rpc.p95),
        ms(rpc.p99),
        ms(rpc.max_ms),
        rate(rpc.mean_size),
    ]


def _requests(figures: Figures) -> Section:
    logs = ["logs/s"] if figures.has_logs else []
    headers = [
        "RPC",
        "requests",
        "failures",
        "failure %",
        "requests/s",
        *logs,
        "p50 ms",
        "p90 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "mean size B",
    ]
    rows = [_rpc_row(rpc, figures.has_logs) for rpc in [*figures.rpcs, figures.aggregated]]
    note = "Requests, failures and requests/s are Locust's figures for the whole run"
    note += "; logs/s is logs acknowledged per second of the run (_logs.csv)." if figures.has_logs else "."
    if figures.latency_source == HDR:
        note += (
            " p50 to max: the suite's HDR histograms (_histograms.json; every call, all outcomes, to the "
            "microsecond, 3 significant digits, never outside the calls' min and max). Locust's own "
            "percentiles (locust_stats.csv, the web UI) round to two significant digits and differ."
        )
    else:
        note += " p50 to max: Locust's percentiles (two significant digits; no _histograms.json in this run)."
    return Section("Requests per RPC", [Table(headers, rows), note])


def _throughput(figures: Figures) -> Section:
    rows = [
        [
            "requests/s",
            rate(figures.request_rates.peak),
            rate(figures.request_rates.sustained),
            rate(figures.aggregated.rps),
        ]
    ]
    if figures.has_logs:
        rows.append(
            [
                "logs acked/s",
                rate(figures.logs_rates.peak),
                rate(figures.logs_rates.sustained),
                rate(figures.aggregated.logs_per_second),
            ]
        )
    blocks: list[Block] = [
        Table(["figure", "peak", "sustained", "whole run"], rows),
        "Peak: the best history interval. Sustained: from the first interval at the maximum user count "
        "to the last full interval (ramp-up and the partial interval at the stop out); n/a without history.",
    ]
    if figures.logs_totals is not None:
        totals = figures.logs_totals
        blocks.append(
            Table(
                ["logs", "count"],
                [
                    ["sent", count(totals["sent"])],
                    ["acked", count(totals["acked"])],
                    ["rejected", count(totals["rejected"])],
                    ["in doubt (outcome unknown)", count(totals["in_doubt"])],
                ],
            )
        )
    return Section("Throughput", blocks)


def _arrivals(figures: Figures) -> Section | None:
    arrivals = figures.arrivals
    if arrivals is None:
        return None
    seconds = max(figures.duration_seconds, 1e-9)
    figures_by_label = [
        ("offered", arrivals.offered),
        ("made", arrivals.made),
        ("dropped", arrivals.dropped),
        *((f"dropped: {cause}", value) for cause, value in arrivals.dropped_by_cause.items()),
    ]
    rows = [[label, count(value), rate(value / seconds)] for label, value in figures_by_label]
    blocks: list[Block] = [
        Table(["calls", "count", "per second"], rows),
        "Open model: calls offered on the schedule, made by a user, and dropped (no user could take the start: "
        "USERS_BUSY, every user in a call, raise -u; USERS_NOT_READY, users not spawned yet or in their own code "
        "between calls; GENERATOR_BEHIND, this process could not dispatch the rate). Dropped calls never reached "
        "the service: they are in no request count, rate, percentile or gate.",
    ]
    if arrivals.intervals is not None and arrivals.dropped:
        intervals = arrivals.intervals
        blocks.append(Table(["second", "offered/s", "made/s", "dropped/s"], [
            [f"{row['seconds']:g}", rate(row["offered/s"]), rate(row["made/s"]), rate(row["dropped/s"])]
            for _, row in intervals.iterrows()]))  # fmt: skip
    return Section("Arrivals", blocks)


def _failures(figures: Figures) -> Section:
    total = sum(cause.count for cause in figures.causes)
    if not figures.causes:
        blocks: list[Block] = ["No failures recorded."]
    else:
        rows = [
            [
                c.cause,
                count(c.count),
                percent(100.0 * c.count / total if total else 0.0),
                ", ".join(c.names),
                " / ".join(_plain(sample) for sample in c.samples),
            ]
            for c in figures.causes
        ]
        blocks = [Table(["cause", "count", "share", "RPCs", "sample messages"], rows)]
    if figures.exceptions:
        rows = [[_plain(message)[:200], count(n)] for n, message in figures.exceptions]
        blocks += [
            "Exceptions raised in the locustfile (_exceptions.csv):",
            Table(["message", "count"], rows),
        ]
    return Section("Failures by cause", blocks)


def _latency(figures: Figures) -> Section | None:
    if figures.latency is None:
        return None
    note = "Failed calls apart from successful ones, from the suite's HDR histograms (_latency.csv)."
    if figures.service_time is not None:
        note += (
            " Measured from each call's scheduled start (--arrival-rate, an open model): time spent waiting "
            "for a stalled service or a free user counts, so there is no coordinated omission."
        )
    return Section("Latency by outcome", [_latency_table(figures.latency), note])


def _visibility_samples(step: dict[str, Any]) -> str:
    """A capacity step's freshness samples as capacity.json counts them, every part named (``65 visible, 21 late,
    10 pending of 96 taken``; pending: not found yet, younger than the SLO at the step's end), n/a without a probe or
    in files before those fields."""
    if "visibility_taken" not in step or not step["visibility_taken"]:
        return "n/a"
    pending = f", {count(step['visibility_pending'])} pending" if step.get("visibility_pending") else ""
    return (f"{count(step['visibility_visible'])} visible, {count(step['visibility_late'])} late{pending} of "
            f"{count(step['visibility_taken'])} taken")  # fmt: skip


def _capacity(figures: Figures) -> Section | None:
    capacity = figures.capacity
    if capacity is None:
        return None
    rows = [
        [
            rate(step["offered_rps"]),
            rate(step["achieved_rps"]),
            rate(step["offered_logs_per_second"]),
            rate(step["acked_logs_per_second"]),
            "n/a" if step["stored_logs_per_second"] is None else rate(step["stored_logs_per_second"]),
            f"{ms(step['p50_ms'])} / {ms(step['p95_ms'])} / {ms(step['p99_ms'])}",
            ", ".join(f"{cause} {n}" for cause, n in step["failures"].items()) or "none",
            count(step["dropped"]),
            "n/a" if step["backlog_end"] is None else f"{step['backlog_start']:,} -> {step['backlog_end']:,}",
            "n/a" if step.get("visibility_p95_ms") is None else ms(step["visibility_p95_ms"]),
            _visibility_samples(step),
            "good" if step["good"] else ", ".join(cause["status"] for cause in step["broken_by"]),
        ]
        for step in capacity["steps"]
    ]
    headers = ["calls/s offered", "achieved", "logs/s offered", "acked", "stored", "p50/p95/p99 ms", "failures",
               "dropped", "backlog", "visible p95 ms", "visibility samples", "verdict"]  # fmt: skip
    cause, slo = capacity["breaking_cause"], capacity["slo"]
    blocks: list[Block] = [
        _plain(capacity["answer"]),
        f"Breaking cause: {_plain(cause['words'])} ({cause['status']}). A step is bad when its failures exceed "
        f"{slo['failure_rate']:.1%}, its p95 (from the scheduled start) exceeds {slo['p95_ms']:g} ms, fewer "
        "than 95% of the offered logs are acknowledged, an arrival is dropped, or the service stores "
        "less than 95% of what it acknowledges"
        + (
            f", or its logs become visible to QueryLog later than {slo['visibility_p95_ms']:g} ms (p95, FRESHNESS)."
            if slo.get("visibility_p95_ms")
            else "."
        ),
        Table(headers, rows),
    ]
    if capacity.get("batch_sizes"):
        sweep = [[str(found["batch_size"]), rate(found["max_sustainable_rps"]),
                  rate(found["max_sustainable_logs_per_second"]), found["breaking_cause"]["status"]]
                 for found in capacity["batch_sizes"]]  # fmt: skip
        blocks += ["Per batch size:", Table(["batch size", "calls/s", "logs/s", "broken by"], sweep)]
    return Section("Capacity", blocks)


def _service_time(figures: Figures) -> Section | None:
    if figures.service_time is None:
        return None
    note = "From sending each call to its answer: what the service took, without the wait for the scheduled start."
    return Section("Service time by outcome", [_latency_table(figures.service_time), note])


def _latency_table(latency: Any) -> Table:
    rows = [
        [
            _plain(row["Name"]),
            _plain(row["Outcome"]),
            count(int(row["Count"])),
            ms(row["Average (ms)"]),
            ms(row["50%"]),
            ms(row["90%"]),
            ms(row["95%"]),
            ms(row["99%"]),
            ms(row["Max (ms)"]),
        ]
        for _, row in latency.iterrows()
    ]
    headers = ["RPC", "outcome", "count", "mean ms", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "max ms"]
    return Table(headers, rows)


def _audit(figures: Figures) -> Section | None:
    audit = figures.audit
    if audit is None:
        return None
    most = audit.get("lost_max", audit["lost"])
    most = "?" if most is None or audit.get("status") == "incomplete" else most
    audit = {**audit, "lost": f"{audit.get('lost_min', audit['lost'])}..{most}"}
    keys = ("run_id", "acked", "in_doubt", "persisted", "lost", "unexpected", "settle_seconds", "status", "detail")
    rows = [[key.replace("_", " "), _plain(audit[key])] for key in keys if audit.get(key) not in (None, "")]
    blocks: list[Block] = [Table(["figure", "value"], rows)]
    if audit.get("in_doubt"):
        blocks.append(
            f"Lost is a range: {audit['in_doubt']} logs were sent in calls whose outcome is unknown (a deadline, a "
            "cancel, a connection broken mid-call), so the service may or may not have queued them. The low end "
            "counts acknowledged logs not stored; the high end adds the logs in doubt that were not stored either."
        )
    if audit.get("unreported_workers"):
        blocks.append(
            f"Delivery unknown: the final counts of {len(audit['unreported_workers'])} worker(s) never arrived "
            f"({', '.join(audit['unreported_workers'])}), so acknowledged is a lower bound; their logs acknowledged "
            "since their last report may stand in for lost ones. Only a shortfall below it is a proven loss."
        )
    return Section("Delivery audit", blocks)


def _most(audit: dict[str, Any]) -> str:
    """The most that may be lost, '?' when unknown (a worker's final counts never arrived, or another writer shares
    the run id)."""
    most = audit.get("lost_max", audit["lost"])
    return "?" if most is None else f"{most:,}"


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f}"


def _actions(figures: Figures) -> Section | None:
    """The actions, their outcome, what happened around each, and the delivery audit of each phase."""
    if not figures.actions:
        return None
    blocks: list[Block] = [_plain(a.audit["sentence"]) for a in figures.actions if a.audit and a.audit.get("sentence")]
    blocks.append(Table(
        ["phase", "at s", "command", "outcome", "exit code", "took s", "first line of output"],
        [[str(a.phase), f"{a.at:g}", _plain(a.command), a.status, a.exit_code or "n/a", _seconds(a.duration),
          _plain(a.output.split(" | ")[0])[:120]] for a in figures.actions]))  # fmt: skip
    around = [
        [str(a.phase), "yes" if a.disrupted else "no",
         "not recovered" if a.disrupted and a.time_to_recover is None else _seconds(a.time_to_recover),
         "n/a" if a.failed_calls is None else count(a.failed_calls), ms(a.worst_p99_ms)]
        for a in figures.actions
    ]  # fmt: skip
    blocks += [
        Table(["action", "disrupted", "time to recover s", "failed calls", "worst p99 ms"], around),
        "Around each action, from its start to the next action (or the end): an interval of the stats history is "
        "disrupted when it has failures or its requests/s is below 90% of the 10 s before the action. Time to "
        "recover runs to the end of the last disrupted interval; failed calls and the worst p99 (Locust's current "
        "window) are counted up to then. n/a without a stats history.",
    ]
    phases = (figures.audit or {}).get("phases") or []
    if phases:
        rows = [[str(p["phase"]), "before the first action" if p.get("action") is None else _plain(p["action"]),
                 count(p["acked"]), count(p.get("in_doubt", 0)), count(p["persisted"]),
                 f"{p.get('lost_min', p['lost']):,}..{_most(p)}", p["status"]]
                for p in phases]  # fmt: skip
        blocks += [
            Table(["phase", "sent after", "acked", "in doubt", "stored", "lost", "status"], rows),
            "Phase N holds the logs sent after the Nth action started (metadata phase=N); each phase is counted "
            "apart (QueryLog by run id and phase) once the run's audit has settled. A log counts in the phase it was "
            "sent in: an action that drops the service's queue also loses the logs of the phase before it that "
            "were still queued when it struck.",
        ]
    return Section("Actions", blocks)


def _peers(figures: Figures) -> Section | None:
    spread = figures.peers
    if spread is None:
        return None
    rows = [[_plain(peer.peer), count(peer.requests), percent(peer.share * 100),
             "more than 2x its fair share" if peer in spread.skewed else "no call reached it" if peer in spread.idle
             else ""] for peer in spread.peers]  # fmt: skip
    blocks: list[Block] = [
        f"Calls per server, as grpc counted them; a fair share is {spread.fair_share:.0%}. Every RPC counts together "
        "(the freshness probe's queries too): grpc gives a call no peer, so these counts are per server, not per RPC."
    ]
    blocks += [f"Warning: {warning}" for warning in spread.warnings()]
    if len(spread.peers) > 1 and spread.per_second is None:
        blocks.append("No chart of calls/s per server over time: the run's _peers_history.csv holds fewer than two "
                      "seconds.")  # fmt: skip
    blocks.append(Table(["server", "requests", "share", "flag"], rows))
    return Section("Where the calls went", blocks)


def _freshness(figures: Figures) -> Section | None:
    fresh = figures.freshness
    if fresh is None:
        return None
    rows = [[_plain(row["Name"]), count(int(row["Samples"])), count(int(row["Visible"])),
             count(int(row["Never Visible"])), count(int(row.get("Unknown", 0))), ms(row["50%"]), ms(row["95%"]),
             ms(row["99%"]), ms(row["Max (ms)"])]
            for _, row in fresh.rows.iterrows()]  # fmt: skip
    headers = ["RPC", "samples", "visible", "never visible", "unknown", "p50 ms", "p95 ms", "p99 ms", "max ms"]
    blocks: list[Block] = [
        "Visibility latency: from a log's acknowledgement to the first QueryLog that returns it, over logs sampled "
        "during the run. The service acknowledges before it stores, so this is how stale a log viewer or an alert "
        f"built on QueryLog is. Error bound: {fresh.error_bound()} (the log became visible after the last poll "
        "that did not return it). The audit's settle time is another thing: how long the audit waited for the last "
        "of the run's logs after the stop.",
        Table(headers, rows),
    ]
    if not fresh.phases.empty:
        phase_rows = [[_plain(row["Name"]), count(int(row["Samples"])), count(int(row["Visible"])),
                       count(int(row["Never Visible"])), count(int(row.get("Unknown", 0))), ms(row["50%"]),
                       ms(row["95%"]), ms(row["99%"]), ms(row["Max (ms)"]), ms(row.get("Largest Poll Gap (ms)"))]
                      for _, row in fresh.phases.iterrows()]  # fmt: skip
        blocks += ["Per phase of `--action` (phase N: the logs sent after the Nth action started), each with its own "
                   "error bound, the largest gap between the polls that saw one of its samples:",
                   Table(["phase", "samples", "visible", "never visible", "unknown", "p50 ms", "p95 ms", "p99 ms",
                          "max ms", "late by at most ms"], phase_rows)]  # fmt: skip
        blocks += [f"{_plain(row['Name'])}: no sample, no figure: {because}."
                   for _, row in fresh.phases.iterrows() if (because := no_sample_because(row))]  # fmt: skip
    if fresh.probe_queries is not None:
        share = fresh.probe_queries / max(figures.aggregated.requests + fresh.probe_queries, 1)
        blocks.append(f"The probe made {count(fresh.probe_queries)} QueryLog calls ({percent(share * 100)} of all "
                      "calls), kept out of the request figures above.")  # fmt: skip
    if fresh.never_visible:
        named = ", ".join(f"{s['name']} sample {s['sample']} of {s['probe']} (acknowledged {s['acked_at']})"
                          for s in fresh.never_visible_samples or [])  # fmt: skip
        blocks.append(f"{count(fresh.never_visible)} sampled log(s) never became visible by the end of the audit"
                      + (f" ({fresh.never_visible_because})" if fresh.never_visible_because else "")
                      + (f": {named}" if named else "") + ".")  # fmt: skip
    if fresh.unknown:
        named = ", ".join(f"{s['name']} sample {s['sample']} of {s['probe']} (acknowledged {s['acked_at']})"
                          for s in fresh.unknown_samples or [])  # fmt: skip
        blocks.append(f"{count(fresh.unknown)} sampled log(s) are unknown, not looked for long enough "
                      f"({fresh.unknown_because or 'the looking was cut short'})"
                      + (f": {named}" if named else "") + ".")  # fmt: skip
    return Section("Freshness (visibility latency)", blocks)


def comparison_table(changes: list[Change]) -> Table:
    """Each figure in the baseline and this run, its absolute and relative change, regressions flagged."""
    rows = [
        [
            c.name,
            c.metric,
            _figure(c.metric, c.baseline),
            _figure(c.metric, c.current),
            _signed(c.delta, "", 3 if c.metric.endswith(" ms") else 2),
            _signed(c.percent, "%"),
            "REGRESSION" if c.regression else "",
        ]
        for c in changes
    ]
    return Table(["RPC", "figure", "baseline", "this run", "change", "change %", "flag"], rows)


def _comparison(changes: list[Change], baseline: str) -> Section:
    flagged = sum(change.regression for change in changes)
    verdict = (
        f"{flagged} regression(s) beyond {TOLERANCE:.0%}." if flagged else f"No regression beyond {TOLERANCE:.0%}."
    )
    return Section(
        "Comparison with the baseline",
        [
            f"Baseline: {baseline}. {verdict}",
            comparison_table(changes),
        ],
    )


def _charts(charts: list[Chart] | None) -> Section:
    if charts is None:
        return Section("Charts", ["Not drawn (--no-charts)."])
    if not charts:
        return Section("Charts", ["No stats history (_stats_history.csv) in this run: no charts."])
    blocks: list[Block] = []
    for chart in charts:
        blocks.append(chart)
        if chart.note:
            blocks.append(chart.note)
    return Section("Charts", blocks)


def build(
    figures: Figures,
    charts: list[Chart] | None,
    *,
    derived: bool,
    title: str,
    changes: list[Change] | None = None,
    baseline: str = "",
) -> Document:
    """The whole report of one run (and its comparison with a baseline when given); ``charts`` None: not drawn."""
    sections = [
        _parameters(figures, derived),
        _requests(figures),
        _throughput(figures),
        _arrivals(figures),
        _failures(figures),
        _capacity(figures),
        _latency(figures),
        _service_time(figures),
        _audit(figures),
        _actions(figures),
        _freshness(figures),
        _peers(figures),
    ]
    if changes is not None:
        sections.append(_comparison(changes, baseline))
    sections.append(_charts(charts))
    return Document(title, [section for section in sections if section is not None])
