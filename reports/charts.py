"""PNG charts of a run's history (matplotlib, Agg, no pyplot state): throughput, latency, users, failures."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from grpc_user.histograms import DISTRIBUTION_PERCENTILES, LatencyHistograms
from reports.figures import Figures, Timeline
from reports.peers import PeerSpread

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

DPI = 90
SIZE = (8.0, 3.2)


@dataclass
class Chart:
    """One rendered chart: file name in the report folder, title, PNG bytes, an optional note."""

    filename: str
    title: str
    png: bytes
    note: str = ""


def new_figure(width: float, height: float) -> Figure:
    """An empty matplotlib figure of ``width`` x ``height`` inches at ``DPI``, on an Agg canvas (no pyplot state).
    matplotlib is imported here, by the first chart a process draws (0.6 CPU-s): a report with ``--no-charts`` or
    ``--json``, and a process that only imports ``reports``, import none of it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _figure(rows: int = 1) -> tuple[Figure, list]:
    figure = new_figure(SIZE[0], SIZE[1] * (1 + 0.6 * (rows - 1)))
    axes = figure.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    for ax in axes:
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel("seconds since start")
    return figure, list(axes)


def _mark_actions(figure: Figure, timeline: Timeline) -> None:
    """A dashed vertical line at each action's start on every panel, its number at the top of the first."""
    for seconds, label in timeline.actions:
        for index, ax in enumerate(figure.axes):
            ax.axvline(seconds, color="black", linestyle="--", linewidth=1, alpha=0.7)
            if index == 0:
                ax.annotate(f"action {label}", (seconds, 1.0), xycoords=("data", "axes fraction"), xytext=(2, -10),
                            textcoords="offset points", fontsize="small")  # fmt: skip


def _margins(figure: Figure) -> None:
    """Fixed margins in inches, room for the tick labels, axis labels and title (tight_layout costs 0.4 s a chart)."""
    width, height = figure.get_size_inches()
    figure.subplots_adjust(left=0.8 / width, right=1 - 0.15 / width, top=1 - 0.35 / height, bottom=0.5 / height,
                           hspace=0.35 / (height / len(figure.axes)))  # fmt: skip


def _png(figure: Figure) -> bytes:
    for ax in figure.axes:
        ax.set_ylim(bottom=0)
    _margins(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _throughput(timeline: Timeline) -> Chart:
    has_logs = timeline.logs_per_second is not None and len(timeline.logs_per_second) > 0
    figure, axes = _figure(2 if has_logs else 1)
    axes[0].plot(timeline.seconds[1:], timeline.rps, color="tab:blue", label="requests/s")
    axes[0].set_ylabel("requests/s")
    axes[0].set_title("Throughput over time")
    if has_logs:
        axes[1].plot(timeline.logs_seconds, timeline.logs_per_second, color="tab:green", label="logs acked/s")
        axes[1].set_ylabel("logs acked/s")
    _mark_actions(figure, timeline)
    return Chart("report_throughput.png", "Requests/s and logs/s over time", _png(figure))


def _latency(timeline: Timeline) -> Chart:
    figure, (ax,) = _figure()
    for values, label in ((timeline.p50, "p50"), (timeline.p95, "p95"), (timeline.p99, "p99")):
        ax.plot(timeline.seconds, values, label=label)
    ax.set_ylabel("ms")
    ax.set_title("Latency percentiles over time (Locust's current window, all RPCs)")
    ax.legend(loc="upper left")
    _mark_actions(figure, timeline)
    return Chart("report_latency.png", "Latency percentiles over time", _png(figure))


def _users(timeline: Timeline) -> Chart:
    figure, (ax,) = _figure()
    ax.step(timeline.seconds, timeline.users, where="post", color="tab:purple")
    ax.set_ylabel("users")
    ax.set_title("Users over time")
    _mark_actions(figure, timeline)
    return Chart("report_users.png", "Users over time", _png(figure))


def _failures(timeline: Timeline) -> Chart | None:
    if not np.any(timeline.failures_per_second > 0):
        return None
    figure, (ax,) = _figure()
    by_cause = timeline.failures_by_cause
    if by_cause is not None and not by_cause.empty and by_cause.to_numpy().sum() > 0:
        ax.stackplot(by_cause.index.to_numpy(), by_cause.to_numpy().T, labels=[str(c) for c in by_cause.columns])
        ax.legend(loc="upper left", fontsize="small")
        note = (
            ""
            if timeline.causes_exact
            else ("An RPC with several causes has its failures/s split by the causes' shares in _failures.csv.")
        )
        title = "Failures/s over time by cause"
    else:
        ax.plot(timeline.seconds[1:], timeline.failures_per_second, color="tab:red")
        note = "The history holds only total failures over time; see the causes table for what they were."
        title = "Failures/s over time (total)"
    ax.set_ylabel("failures/s")
    ax.set_title(title)
    _mark_actions(figure, timeline)
    return Chart("report_failures.png", title, _png(figure), note)


def _peers(spread: PeerSpread | None) -> Chart | None:
    """Calls/s per server over time, when there is more than one server and a history."""
    if spread is None or spread.per_second is None or len(spread.peers) < 2:
        return None
    figure, (ax,) = _figure()
    for peer, values in sorted(spread.per_second.items()):
        ax.plot(spread.seconds, values, label=peer)
    ax.set_ylabel("calls/s")
    ax.set_title("Calls/s per server over time")
    ax.legend(loc="upper left", fontsize="small")
    return Chart("report_peers.png", "Calls/s per server over time", _png(figure))


def _knee(capacity: dict) -> Chart:
    """The capacity search's steps: achieved against offered logs/s, and latency against the offered rate."""
    figure, axes = _figure(2)
    axes[0].set_xlabel("")
    steps = sorted(capacity["steps"], key=lambda step: step["offered_logs_per_second"])
    offered = [step["offered_logs_per_second"] for step in steps]
    top = max(offered, default=1.0)
    axes[0].plot([0, top], [0, top], color="grey", linestyle=":", label="achieved = offered")
    for good, colour, label in ((True, "tab:green", "good step"), (False, "tab:red", "bad step")):
        chosen = [step for step in steps if step["good"] is good]
        axes[0].scatter([step["offered_logs_per_second"] for step in chosen],
                        [step["acked_logs_per_second"] for step in chosen], color=colour, label=label)  # fmt: skip
    axes[0].axvline(capacity["max_sustainable_logs_per_second"], color="tab:green", linestyle="--",
                    label="max sustainable")  # fmt: skip
    axes[0].set_ylabel("logs/s acknowledged")
    axes[0].set_title("Capacity search: achieved against offered")
    axes[0].legend(loc="upper left", fontsize="small")
    for key, colour in (("p50_ms", "tab:blue"), ("p95_ms", "tab:orange"), ("p99_ms", "tab:red")):
        axes[1].plot(offered, [step[key] for step in steps], marker="o", color=colour, label=key.split("_")[0])
    axes[1].set_ylabel("latency ms")
    axes[1].set_xlabel("logs/s offered")
    axes[1].legend(loc="upper left", fontsize="small")
    return Chart("report_capacity.png", "Capacity: the knee", _png(figure))


def _freshness(figures: Figures) -> Chart | None:
    """Visibility latency of the samples acknowledged in each second: p50, p95 and max per RPC."""
    fresh = figures.freshness
    if fresh is None or fresh.history is None or fresh.history.empty:
        return None
    figure, (ax,) = _figure()
    for name, rows in fresh.history.groupby("Name", sort=True):
        line = ax.plot(rows["seconds"], rows["50%"], marker=".", label=f"{name} p50")[0]
        ax.plot(rows["seconds"], rows["95%"], linestyle="--", color=line.get_color(), label=f"{name} p95")
        ax.plot(rows["seconds"], rows["Max (ms)"], linestyle=":", color=line.get_color(), label=f"{name} max")
    ax.set_ylabel("visibility latency ms")
    ax.set_title("Freshness over time: acknowledgement to the first QueryLog that returns the log")
    ax.legend(loc="upper left", fontsize="small")
    note = f"Each point: the samples acknowledged in that second. Error bound: {fresh.error_bound()}."
    return Chart("report_freshness.png", "Freshness over time", _png(figure), note)


def distribution_points(histograms: LatencyHistograms, name: str) -> tuple[np.ndarray, np.ndarray]:
    """One RPC's latency distribution, every outcome: x = 1/(1-p) (the usual HDR plot's axis), y = ms. Percentiles
    beyond what the call count resolves (99.99% of 100 calls) are left out; 100% is drawn at the last one's x."""
    latencies = histograms.combined(name=name)
    resolved = [p for p in DISTRIBUTION_PERCENTILES if p < 100 and 1 / (1 - p / 100) <= max(latencies.count, 1)]
    values = latencies.values_at(resolved + [100.0])
    x = [1 / (1 - p / 100) for p in resolved]
    x.append(x[-1] * 10 if len(x) > 1 else 10.0)
    return np.array(x), np.array([values[p] / 1000 for p in [*resolved, 100.0]])


def _distribution(figures: Figures, baseline: Figures | None) -> Chart | None:
    """The HDR percentile distribution per RPC (and the baseline's, dashed): latency against 1/(1-p), log scale."""
    mine = (figures.histograms or {}).get("latency")
    theirs = None if baseline is None else (baseline.histograms or {}).get("latency")
    if mine is None or not mine.names():
        return None
    figure = new_figure(SIZE[0], SIZE[1] * 1.4)
    ax = figure.subplots()
    ax.grid(True, which="both", alpha=0.3)
    colours = iter(("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink"))
    highest = 10.0
    for name in mine.names():
        colour = next(colours, "tab:grey")
        x, y = distribution_points(mine, name)
        ax.plot(x, y, color=colour, marker=".", label=name)
        highest = max(highest, x[-1])
        if theirs is not None and name in theirs.names():
            x, y = distribution_points(theirs, name)
            ax.plot(x, y, color=colour, linestyle="--", label=f"{name} (baseline)")
            highest = max(highest, x[-1])
    ax.set_xscale("log")
    ticks = [t for t in (1, 2, 10, 100, 1_000, 10_000, 100_000) if t <= highest * 1.01]
    ax.set_xticks(ticks, [f"{100 * (1 - 1 / t):g}%" for t in ticks])
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency ms")
    ax.set_title("Latency by percentile (HDR histograms, every outcome)" + (" against the baseline" if theirs else ""))
    ax.legend(loc="upper left", fontsize="small")
    ax.set_ylim(bottom=0)
    _margins(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    note = (
        "Each RPC's latency at each percentile, from the run's full HDR histograms; the x axis spreads the tail "
        "(1/(1-p), log scale). The last point of a line is the slowest call."
    )
    return Chart("report_latency_distribution.png", "Latency distribution (HDR)", buffer.getvalue(), note)


def render_charts(figures: Figures, baseline: Figures | None = None) -> list[Chart]:
    """All charts the run's files allow: the HDR latency distribution (against the baseline's when given), the knee
    of a capacity search, and the history's charts (none without a stats history)."""
    fixed = [chart for chart in (_distribution(figures, baseline),) if chart is not None]
    fixed += [_knee(figures.capacity)] if figures.capacity else []
    freshness = _freshness(figures)
    fixed += [freshness] if freshness is not None else []
    timeline = figures.timeline
    if timeline is None:
        logger.info("no stats history: no history charts")
        return fixed
    charts = [*fixed, _throughput(timeline), _latency(timeline), _users(timeline), _failures(timeline),
              _peers(figures.peers)]  # fmt: skip
    return [chart for chart in charts if chart is not None]
