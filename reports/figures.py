"""The report's numbers, computed with pandas from a RunData: per-RPC table, rates, causes, timeline."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from grpc_user.histograms import Latencies, LatencyHistograms
from grpc_user.run_files.freshness_words import can_raise, coarse, coverage, poll_wait, sampled
from grpc_user.run_files.schema import AGGREGATED, PHASE_ROW_PREFIX, WIDER_THAN_ASKED
from reports.actions import ActionFigures, measure_around, read_actions
from reports.arrivals import Arrivals, arrival_figures
from reports.loading import RunData
from reports.peers import PeerSpread, spread

HDR = "hdr"
LOCUST = "locust"
_WRAPPED = re.compile(r"^([A-Za-z_][\w.]*)\((.*)\)$", re.S)


@dataclass
class RpcFigures:
    """One row of the per-RPC table (or the Aggregated row)."""

    name: str
    requests: int
    failures: int
    failure_pct: float
    rps: float
    logs_per_second: float | None
    p50: float
    p90: float
    p95: float
    p99: float
    max_ms: float
    mean_size: float


@dataclass
class Cause:
    """Failures sharing a cause (the status before the first ':' of Locust's error text)."""

    cause: str
    count: int
    names: list[str]
    samples: list[str]


@dataclass
class Rates:
    """Peak (best history interval) and sustained (steady state: full users, last partial interval out)."""

    peak: float | None = None
    sustained: float | None = None


@dataclass
class Timeline:
    """Series for the charts: seconds since the first history row; rates are plotted at interval ends."""

    seconds: np.ndarray
    users: np.ndarray
    rps: np.ndarray
    failures_per_second: np.ndarray
    p50: np.ndarray
    p95: np.ndarray
    p99: np.ndarray
    logs_seconds: np.ndarray | None = None
    logs_per_second: np.ndarray | None = None
    failures_by_cause: pd.DataFrame | None = None
    causes_exact: bool = True
    first_stamp: float = 0.0
    actions: list[tuple[float, str]] = field(default_factory=list)


@dataclass
class Freshness:
    """Visibility latency (ms): acknowledgement to the first QueryLog that returns a sampled log.

    ``rows``: ``_freshness.csv`` (per name and Aggregated); ``phases``: its ``phase N`` rows (``--action``; empty
    without); ``history``: the samples found per interval with ``seconds`` since the run's first history row; the
    rest from ``_freshness.json`` when present.
    """

    rows: pd.DataFrame
    phases: pd.DataFrame
    history: pd.DataFrame | None
    poll_interval_ms: float
    samples: int
    visible: int
    never_visible: int
    p50: float | None
    p95: float | None
    p99: float | None
    max_ms: float | None
    max_poll_gap_ms: float | None = None
    asked: int | None = None
    # Of those asked, the samples that fell due while the probe did not sample (its first seconds).
    asked_unsampled: int = 0
    sampling_limited: bool = False
    # --freshness-query-share (percent): at its maximum the call rate, not the share, limited the probe.
    query_share_percent: float = 1.5
    # Seconds into the test sampling all the time stopped to keep the share's rest for the polls after the stop.
    sampling_reserved_at_s: float | None = None
    # The figures are a coarse window's (the store-learning's flush cycle), counted as no window at the poll interval
    # counted any; the flush cycle learnt (ms) and when the share was expected to pay for such a window (s into the
    # test), None when not known; ``coarse``: the words that say so ('' otherwise).
    held_released: bool = False
    flush_cycle_ms: float | None = None
    precise_window_at_s: float | None = None
    coarse: str = ""
    # When (s into a test of ``test_s``) the first and last counted sample found was acknowledged: the part of the run
    # the figures cover (None when not known), and the words when they start well after its start or end well before
    # its end (``coverage``; '' else).
    acked_from_s: float | None = None
    acked_to_s: float | None = None
    test_s: float | None = None
    coverage: str = ""
    # Samples taken to learn the store's pace, or in a coarser window a finer one replaced: never counted.
    held_back: int = 0
    # Every sample taken: the counted ones (``samples``) and the held back ones.
    taken: int = 0
    probe_queries: int | None = None
    # Samples due on calls the service did not acknowledge (never taken), and from when (s into the test) to the end
    # none was, after the last acknowledged at ``last_acked_s`` (None: the latest was), the last one's cause.
    unacknowledged: int = 0
    failing_since_s: float | None = None
    last_acked_s: float | None = None
    failing_status: str = ""
    # A master's workers lost before their final report (``[{"worker", "last_report_s"}]``) and the samples they
    # still looked for, pending for good.
    lost_workers: list[dict[str, Any]] = field(default_factory=list)
    lost_pending: int = 0
    never_visible_samples: list[dict[str, Any]] | None = None
    # Why the samples never visible were not, when the audit did not settle but saw nothing stored ('' otherwise).
    never_visible_because: str = ""
    unknown: int = 0
    unknown_samples: list[dict[str, Any]] | None = None
    unknown_because: str = ""
    # The found samples' latencies, all names together (``_freshness.json``), None without them.
    visible_latencies: Latencies | None = None
    # Why fewer samples were counted than asked, in the summary line's words (``freshness_words.sampled``), '' when
    # none is missing.
    sampled: str = ""
    # Why the polls came further apart than the poll interval, when their starting late explains it
    # (``freshness_words.poll_wait``), '' otherwise.
    poll_wait: str = ""

    @property
    def p95_with_never_visible(self) -> float | None:
        """p95 over every sample that became visible or never did, a sample never visible counting as infinitely
        late (what the gate reads): the visible samples' value at 95% of all of them (from the HDR histograms; the
        visible p95 when a run's files lack them); infinite beyond 5% never visible, None with no sample of either."""
        if self.never_visible > 0.05 * (self.visible + self.never_visible):
            return math.inf
        if not self.never_visible or self.visible_latencies is None or not self.visible_latencies.count:
            return self.p95
        share = 95.0 * (self.visible + self.never_visible) / self.visible
        return self.visible_latencies.value_at(min(share, 100.0)) / 1000

    def error_bound(self) -> str:
        """How late a visibility figure may be, in words: the measured bound (the largest gap between the polls
        that saw a sample), then the poll interval as what it is, the shortest gap asked for."""
        asked = f"{self.poll_interval_ms:g} ms is only the shortest gap asked for between polls"
        if self.max_poll_gap_ms is None:
            measured = "none measured, no sample became visible" if not self.visible else "not in this run's files"
            return f"{measured} ({asked})"
        limited = self.coarse + self.coverage + self.poll_wait + self.sampled
        if (
            not self.coarse
            and self.sampling_limited
            and self.max_poll_gap_ms > WIDER_THAN_ASKED * self.poll_interval_ms
        ):
            apart = f"{self.poll_interval_ms:g} ms apart"
            if can_raise(self.query_share_percent):
                limited += (f"; --freshness-query-share paid for no polls {apart}: raise it for a bound nearer the "
                            "interval")  # fmt: skip
            else:  # a query per call: the call rate limited the polls
                limited += (f"; the call rate paid for no polls {apart} at --freshness-query-share "
                            f"{self.query_share_percent:g}%, its maximum: raise --freshness-poll-interval")  # fmt: skip
        return (f"late by at most {self.max_poll_gap_ms:,.0f} ms, the largest gap between the polls that saw a "
                f"sample, measured{limited} ({asked})")  # fmt: skip


def figure_ms(value: Any) -> float | None:
    """A visibility figure of ``_freshness.csv`` (an empty cell: no visible sample) as a float or None."""
    number = float(value)
    return None if math.isnan(number) else number


def no_sample_because(row: Any) -> str:
    """Why a ``phase N`` row of ``_freshness.csv`` has no sample ('' when it has one, and in files before the
    column)."""
    because = row.get("No Sample Because")
    return "" if not isinstance(because, str) else because


@dataclass
class Figures:
    """Everything a report shows about one run."""

    parameters: dict[str, Any]
    duration_seconds: float
    rpcs: list[RpcFigures]
    aggregated: RpcFigures
    causes: list[Cause]
    exceptions: list[tuple[int, str]]
    latency: pd.DataFrame | None
    service_time: pd.DataFrame | None
    request_rates: Rates
    logs_rates: Rates
    timeline: Timeline | None
    audit: dict[str, Any] | None
    logs_totals: dict[str, int] | None
    capacity: dict[str, Any] | None
    actions: list[ActionFigures] = field(default_factory=list)
    latency_source: str = LOCUST
    histograms: dict[str, LatencyHistograms] | None = None
    arrivals: Arrivals | None = None
    freshness: Freshness | None = None
    peers: PeerSpread | None = None

    @property
    def has_logs(self) -> bool:
        """True when the run has the suite's logs sidecar (logs/s is known)."""
        return self.logs_totals is not None


def cause_of(error: str) -> str:
    """The cause of one error text: ``RESOURCE_EXHAUSTED: queue full`` -> RESOURCE_EXHAUSTED.

    Exception reprs of plain Locust runs (``HTTPError('500 Server Error: ...')``) are unwrapped first;
    without a ':' inside, the exception class is the cause.
    """
    text = error.strip()
    wrapper = _WRAPPED.match(text)
    if wrapper:
        inner = wrapper.group(2).strip().strip("'\"")
        head, colon, _ = inner.partition(":")
        return head.strip() if colon and head.strip() else wrapper.group(1)
    head, colon, _ = text.partition(":")
    return (head.strip() if colon and head.strip() else text)[:80] or "unknown"


def _finite(value: Any) -> float:
    number = float(value)
    return number if math.isfinite(number) else math.nan


def _duration(data: RunData, aggregated: pd.Series) -> float:
    info = data.run_info or {}
    recorded = info.get("duration_seconds")
    if isinstance(recorded, int | float) and recorded > 0:
        return float(recorded)
    if data.history is not None:
        stamps = data.history["Timestamp"]
        if stamps.max() > stamps.min():
            return float(stamps.max() - stamps.min())
    rps = float(aggregated["Requests/s"])
    return float(aggregated["Request Count"]) / rps if rps > 0 else 0.0


def _parameters(data: RunData, duration: float) -> dict[str, Any]:
    info = data.run_info or {}
    users = info.get("users")
    if users is None and data.history is not None:
        users = int(data.history["User Count"].max())
    run_id = info.get("run_id") or (data.audit or {}).get("run_id")
    return {
        "workload": info.get("workload") or info.get("locustfile"),
        "users": users,
        "spawn rate": info.get("spawn_rate"),
        "run time": info.get("run_time"),
        "duration (s)": round(duration, 3),
        "target": info.get("target"),
        "run id": run_id,
        "started at": info.get("started_at"),
        "stopped at": info.get("stopped_at"),
        "workers": info.get("workers"),
        "load model": load_model(info),
    }


def load_model(info: dict[str, Any]) -> str | None:
    """How the load was offered, from ``_run.json``'s options: the open model's rate or ramp, pacing, a capacity
    search, or Locust's closed model of users (None for a run without ``_run.json``)."""
    options = info.get("options")
    if not isinstance(options, dict):
        return None
    if options.get("capacity"):
        return "capacity search (open model, rates chosen by the search)"
    rate = str(options.get("arrival_rate") or "")
    if rate:
        return f"open model: {describe_rate(rate)}"
    if options.get("target_rps"):
        return f"pacing (closed model): {float(options['target_rps']):,g} calls/s in total"
    return "closed model (each user waits for its answer)"


def describe_rate(rate: str) -> str:
    """``--arrival-rate`` in words: ``100`` -> 100 calls/s offered; ``100:2000:60s:10`` -> a ramp."""
    parts = rate.split(":")
    if len(parts) < 3:
        return f"{float(parts[-1]):,g} calls/s offered"
    steps = f" in {parts[3]} steps" if len(parts) > 3 and parts[3] else ""
    return f"{float(parts[0]):,g} to {float(parts[1]):,g} calls/s offered, ramped over {parts[2]}{steps}, then held"


def _rpc(row: pd.Series, logs_acked: float | None, duration: float, latencies: Latencies | None = None) -> RpcFigures:
    """One row; its percentiles and max from the suite's HDR histograms when given (``latencies``), else Locust's."""
    requests, failures = int(row["Request Count"]), int(row["Failure Count"])
    # Over the window of Locust's own Requests/s for this row (its count over its rate: since the last stats reset),
    # so that one log per call gives logs/s == requests/s; the run's duration when the row has no rate.
    rps = float(row["Requests/s"])
    window = requests / rps if requests and rps > 0 else duration
    logs_rate = None if logs_acked is None or window <= 0 else logs_acked / window
    if latencies is not None:
        hdr = latencies.summary() if latencies.count else None
        marks = hdr.percentiles_ms if hdr else {}
        return RpcFigures(
            name=str(row["Name"]), requests=requests, failures=failures,
            failure_pct=100.0 * failures / requests if requests else 0.0, rps=float(row["Requests/s"]),
            logs_per_second=logs_rate, p50=marks.get(50.0, math.nan), p90=marks.get(90.0, math.nan),
            p95=marks.get(95.0, math.nan), p99=marks.get(99.0, math.nan), max_ms=hdr.max_ms if hdr else math.nan,
            mean_size=_finite(row["Average Content Size"]),
        )  # fmt: skip
    return RpcFigures(
        name=str(row["Name"]),
        requests=requests,
        failures=failures,
        failure_pct=100.0 * failures / requests if requests else 0.0,
        rps=float(row["Requests/s"]),
        logs_per_second=logs_rate,
        p50=_finite(row["50%"]),
        p90=_finite(row["90%"]),
        p95=_finite(row["95%"]),
        p99=_finite(row["99%"]),
        max_ms=_finite(row["Max Response Time"]),
        mean_size=_finite(row["Average Content Size"]),
    )


def _causes(failures: pd.DataFrame | None) -> list[Cause]:
    if failures is None:
        return []
    frame = failures.assign(Error=failures["Error"].fillna("").astype(str))
    frame["Cause"] = frame["Error"].map(cause_of)
    causes = []
    for cause, group in frame.groupby("Cause", sort=False):
        by_error = group.groupby("Error")["Occurrences"].sum().sort_values(ascending=False)
        causes.append(
            Cause(
                str(cause),
                int(group["Occurrences"].sum()),
                sorted(set(group["Name"])),
                [str(error) for error in by_error.index[:3]],
            )
        )
    return sorted(causes, key=lambda c: (-c.count, c.cause))


def _last_per_stamp(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per timestamp (the last written), sorted, without the idle tail after the stop.

    Locust may write two rows in the same second, and goes on writing history rows with 0 users
    after a test stops (while the delivery audit runs, or until the web UI quits): of that tail
    only the first row, which closes the last interval of the test, is kept.
    """
    rows = frame.drop_duplicates("Timestamp", keep="last").sort_values("Timestamp", kind="stable")
    active = np.flatnonzero(rows["User Count"].to_numpy() > 0)
    if len(active) == 0:
        return rows
    return rows.iloc[: min(int(active[-1]) + 2, len(rows))]


def _rates(stamps: np.ndarray, cumulative: np.ndarray, users: np.ndarray) -> Rates:
    if len(stamps) < 2:
        return Rates()
    peak = float(np.max(np.diff(cumulative) / np.diff(stamps)))
    full = users == users.max()
    start = int(np.argmax(full))
    # Steady state: while every user runs; the interval in which they stop is partial, so left out.
    end = start + int(np.argmin(full[start:])) - 1 if not full[start:].all() else len(stamps) - 1
    if end <= start:
        return Rates(peak=peak)
    return Rates(peak, float((cumulative[end] - cumulative[start]) / (stamps[end] - stamps[start])))


def _per_second(stamps: np.ndarray, cumulative: np.ndarray) -> np.ndarray:
    return np.diff(cumulative) / np.diff(stamps) if len(stamps) > 1 else np.empty(0)


def _failures_by_cause(
    history: pd.DataFrame, stamps: np.ndarray, failures: pd.DataFrame | None
) -> tuple[pd.DataFrame | None, bool]:
    """Failures/s per cause over time: each RPC's failure rate split by its causes' shares in the failures."""
    per_name = history[history["Name"] != AGGREGATED]
    if failures is None or per_name.empty:
        return None, True
    counts = per_name.pivot_table(index="Timestamp", columns="Name", values="Total Failure Count", aggfunc="last")
    counts = counts.reindex(stamps).ffill().fillna(0.0)
    rates = counts.diff().iloc[1:].div(np.diff(stamps), axis=0)
    mix = failures.assign(Cause=failures["Error"].fillna("").astype(str).map(cause_of)).pivot_table(
        index="Name", columns="Cause", values="Occurrences", aggfunc="sum", fill_value=0
    )
    names = [name for name in mix.index if name in rates.columns]
    if not names:
        return None, True
    mix = mix.loc[names]
    shares = mix.div(mix.sum(axis=1), axis=0)
    by_cause = rates[names].clip(lower=0).dot(shares)
    by_cause.index = stamps[1:] - stamps[0]
    return by_cause, bool(((mix > 0).sum(axis=1) <= 1).all())


def _timeline(data: RunData) -> Timeline | None:
    if data.history is None:
        return None
    aggregated = _last_per_stamp(data.history[data.history["Name"] == AGGREGATED])
    if len(aggregated) < 2:
        return None
    stamps = aggregated["Timestamp"].to_numpy(dtype=float)
    timeline = Timeline(
        seconds=stamps - stamps[0],
        users=aggregated["User Count"].to_numpy(dtype=float),
        rps=_per_second(stamps, aggregated["Total Request Count"].to_numpy(dtype=float)),
        failures_per_second=_per_second(stamps, aggregated["Total Failure Count"].to_numpy(dtype=float)),
        p50=aggregated["50%"].to_numpy(dtype=float),
        p95=aggregated["95%"].to_numpy(dtype=float),
        p99=aggregated["99%"].to_numpy(dtype=float),
        first_stamp=float(stamps[0]),
    )
    timeline.failures_by_cause, timeline.causes_exact = _failures_by_cause(data.history, stamps, data.failures)
    logs = _logs_history_aggregated(data)
    if logs is not None and len(logs) > 1:
        logs_stamps = logs["Timestamp"].to_numpy(dtype=float)
        timeline.logs_seconds = logs_stamps[1:] - stamps[0]
        timeline.logs_per_second = _per_second(logs_stamps, logs["Logs Acked"].to_numpy(dtype=float))
    return timeline


def _logs_history_aggregated(data: RunData) -> pd.DataFrame | None:
    """Aggregated logs history, from 0 logs at the stats history's first row (the start) if earlier."""
    if data.logs_history is None:
        return None
    logs = _last_per_stamp(data.logs_history[data.logs_history["Name"] == AGGREGATED])
    if data.history is None or logs.empty or data.history["Timestamp"].min() >= logs["Timestamp"].iloc[0]:
        return logs
    start = pd.DataFrame({"Timestamp": [data.history["Timestamp"].min()], "User Count": [0], "Logs Acked": [0]})
    return pd.concat([start, logs[["Timestamp", "User Count", "Logs Acked"]]], ignore_index=True)


def _history_rates(frame: pd.DataFrame | None, column: str) -> Rates:
    if frame is None:
        return Rates()
    return _rates(
        frame["Timestamp"].to_numpy(dtype=float),
        frame[column].to_numpy(dtype=float),
        frame["User Count"].to_numpy(dtype=float),
    )


def _logs_totals(logs: pd.DataFrame | None) -> dict[str, int] | None:
    """Logs sent, acked, rejected and in doubt in the whole run (the Aggregated row of _logs.csv, else the sum)."""
    if logs is None:
        return None
    total = logs[logs["Name"] == AGGREGATED]
    sums = total.iloc[-1] if not total.empty else logs.sum(numeric_only=True)
    columns = (("sent", "Logs Sent"), ("acked", "Logs Acked"), ("rejected", "Logs Rejected"),
               ("in_doubt", "Logs In Doubt"))  # fmt: skip
    return {key: int(sums[column]) if column in sums.index else 0 for key, column in columns}


def _per_rpc(stats: pd.DataFrame, logs: pd.DataFrame | None, duration: float,
             latency: LatencyHistograms | None) -> list[RpcFigures]:  # fmt: skip
    """One RpcFigures per name, sorted; a name used by several methods (GET /, POST /) gets the method."""
    per_name = stats[stats["Name"] != AGGREGATED].sort_values(["Name", "Type"])
    acked = {} if logs is None else dict(zip(logs["Name"], logs["Logs Acked"].astype(float), strict=True))
    hdr = {name: latency.combined(name=name) for name in per_name["Name"]} if latency is not None else {}
    logs_acked = {name: None if logs is None else acked.get(name, 0.0) for name in per_name["Name"]}
    if per_name["Name"].duplicated().any():
        per_name = per_name.assign(Name=per_name["Type"].fillna("").astype(str) + " " + per_name["Name"],
                                   Raw=per_name["Name"])  # fmt: skip
    else:
        per_name = per_name.assign(Raw=per_name["Name"])
    return [_rpc(row, logs_acked[row["Raw"]], duration, hdr.get(row["Raw"])) for _, row in per_name.iterrows()]


def _freshness(data: RunData) -> Freshness | None:
    rows = data.freshness
    if rows is None:
        return None
    # No figure without a sample: a row none of whose samples became visible has none (files written before the
    # writers left those cells empty hold 0 there).
    rows = rows.assign(**{column: rows[column].where(rows["Visible"] > 0) for column in VISIBILITY_COLUMNS
                          if column in rows.columns})  # fmt: skip
    is_phase = rows["Name"].astype(str).str.match(rf"^{PHASE_ROW_PREFIX}\d+$")
    rows, phases = rows[~is_phase], rows[is_phase]
    aggregated = rows[rows["Name"] == AGGREGATED]
    total = aggregated.iloc[-1] if not aggregated.empty else rows.iloc[-1]
    info = data.freshness_info or {}
    history = data.freshness_history
    if history is not None:
        first = data.history if data.history is not None else history
        start = float(first["Timestamp"].min())
        history = history.assign(seconds=history["Timestamp"].astype(float) - start)
    return Freshness(
        rows=rows,
        phases=phases,
        history=history,
        poll_interval_ms=float(total["Poll Interval (ms)"]),
        samples=int(total["Samples"]),
        visible=int(total["Visible"]),
        never_visible=int(total["Never Visible"]),
        p50=figure_ms(total["50%"]),
        p95=figure_ms(total["95%"]),
        p99=figure_ms(total["99%"]),
        max_ms=figure_ms(total["Max (ms)"]),
        max_poll_gap_ms=(info.get("max_poll_gap_ms") if "max_poll_gap_ms" in info else _largest_gap(total))
        if total["Visible"]
        else None,
        asked=info.get("asked"),
        asked_unsampled=int(info.get("asked_unsampled", 0)),
        sampled=sampled({**info, "samples": int(total["Samples"])}),
        poll_wait=poll_wait(
            {
                **info,
                "poll_interval_ms": float(total["Poll Interval (ms)"]),
                "aggregated": {"max": figure_ms(total["Max (ms)"])},
            }
        )
        if total["Visible"]
        else "",  # fmt: skip
        sampling_limited=bool(info.get("sampling_limited", False)),
        query_share_percent=float(info.get("query_share_percent", 1.5)),
        sampling_reserved_at_s=info.get("sampling_reserved_at_s"),
        held_released=bool(info.get("held_released", False)),
        flush_cycle_ms=info.get("flush_cycle_ms"),
        precise_window_at_s=info.get("precise_window_at_s"),
        coarse=coarse(info) if total["Visible"] else "",
        acked_from_s=info.get("acked_from_s"),
        acked_to_s=info.get("acked_to_s"),
        test_s=info.get("test_s"),
        coverage=coverage(info) if total["Visible"] else "",
        held_back=int(info.get("held_back", 0)),
        taken=int(info.get("taken", int(total["Samples"]) + int(info.get("held_back", 0)))),
        probe_queries=info.get("probe_queries"),
        unacknowledged=int(info.get("unacknowledged", 0)),
        failing_since_s=info.get("failing_since_s"),
        last_acked_s=info.get("last_acked_s"),
        failing_status=info.get("failing_status", ""),
        lost_workers=info.get("lost_workers", []),
        lost_pending=int(info.get("lost_pending", 0)),
        never_visible_samples=info.get("never_visible_samples"),
        never_visible_because=info.get("never_visible_because", ""),
        unknown=int(total["Unknown"]) if "Unknown" in total else 0,
        unknown_samples=info.get("unknown_samples"),
        unknown_because=info.get("unknown_because", ""),
        visible_latencies=data.visibility.combined() if data.visibility is not None else None,
    )


VISIBILITY_COLUMNS = ("50%", "95%", "99%", "Max (ms)", "Largest Poll Gap (ms)")


def _largest_gap(total: pd.Series) -> float | None:
    """The measured error bound from ``_freshness.csv`` when the run has no ``_freshness.json``."""
    return figure_ms(total["Largest Poll Gap (ms)"]) if "Largest Poll Gap (ms)" in total else None


def compute(data: RunData) -> Figures:
    """All figures of one run; sidecar-based ones are None when the sidecar is absent."""
    stats = data.stats
    aggregated_row = stats[stats["Name"] == AGGREGATED].iloc[-1]
    duration = _duration(data, aggregated_row)
    logs_totals = _logs_totals(data.logs)
    history_aggregated = None
    if data.history is not None:
        history_aggregated = _last_per_stamp(data.history[data.history["Name"] == AGGREGATED])
    timeline = _timeline(data)
    actions = read_actions(data.actions, data.audit)
    if timeline is not None:
        measure_around(actions, timeline.first_stamp, timeline.seconds, timeline.rps, timeline.failures_per_second,
                       timeline.p99)  # fmt: skip
        timeline.actions = [(a.start_seconds, str(a.phase)) for a in actions if a.start_seconds is not None]
    exceptions = []
    if data.exceptions is not None:
        pairs = zip(data.exceptions["Count"], data.exceptions["Message"], strict=True)
        exceptions = [(int(n), str(message)) for n, message in pairs]
    latency = (data.histograms or {}).get("latency")
    return Figures(
        parameters=_parameters(data, duration),
        duration_seconds=duration,
        rpcs=_per_rpc(stats, data.logs, duration, latency),
        aggregated=_rpc(
            aggregated_row,
            None if logs_totals is None else logs_totals["acked"],
            duration,
            None if latency is None else latency.combined(),
        ),
        causes=_causes(data.failures),
        exceptions=exceptions,
        latency=data.latency,
        service_time=data.service_time,
        request_rates=_history_rates(history_aggregated, "Total Request Count"),
        logs_rates=_history_rates(_logs_history_aggregated(data), "Logs Acked"),
        timeline=timeline,
        audit=data.audit,
        logs_totals=logs_totals,
        capacity=data.capacity,
        actions=actions,
        latency_source=HDR if latency is not None else LOCUST,
        histograms=data.histograms,
        arrivals=arrival_figures(data.arrivals, data.arrivals_history),
        freshness=_freshness(data),
        peers=spread(data.peers, data.peers_history),
    )
