"""PNG charts of a run's history (matplotlib, Agg, no pyplot state): throughput, latency, users, failures."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from reports.figures import Figures, Timeline

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


def _figure(rows: int = 1) -> tuple[Figure, list]:
    figure = Figure(figsize=(SIZE[0], SIZE[1] * (1 + 0.6 * (rows - 1))), dpi=DPI)
    FigureCanvasAgg(figure)
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


def _png(figure: Figure) -> bytes:
    for ax in figure.axes:
        ax.set_ylim(bottom=0)
    figure.tight_layout()
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
        ax.stackplot(
            by_cause.index.to_numpy(), by_cause.to_numpy().T, labels=[str(c) for c in by_cause.columns]
        )
        ax.legend(loc="upper left", fontsize="small")
        note = (
            ""
            if timeline.causes_exact
            else (
                "An RPC with several causes has its failures/s split by the causes' shares in _failures.csv."
            )
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


def render_charts(figures: Figures) -> list[Chart]:
    """All charts the run's history allows (none without a stats history), and the knee of a capacity search."""
    knee = [_knee(figures.capacity)] if figures.capacity else []
    timeline = figures.timeline
    if timeline is None:
        logger.info("no stats history: no charts")
        return knee
    charts = [*knee, _throughput(timeline), _latency(timeline), _users(timeline), _failures(timeline)]
    return [chart for chart in charts if chart is not None]
