"""``python -m reports history DIR``: how did each run compare with the ones before it?

Reads every run folder under DIR (each with one ``<prefix>_stats.csv``), groups the runs by workload,
and shows each run's date, users, requests/s, logs/s, p95, failure % and audit status, flagging a
figure that is worse than the median of the previous runs of the same workload by more than the
baseline comparison's tolerance (``reports.compare``). ``--max-regression-pct P`` is a CI gate:
the newest run against the median of the previous ``--last`` runs, exit 1 beyond P%.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from reports.charts import Chart
from reports.compare import METRICS, TOLERANCE
from reports.document import Document, Section, Table
from reports.figures import compute
from reports.gates import non_negative
from reports.loading import STATS_SUFFIX, ReportError, load_run
from reports.markdown import render

# The baseline comparison's figures (label, attribute, higher is better, noise floor) that the history shows.
FIGURES = tuple(metric for metric in METRICS if metric[1] in ("rps", "logs_per_second", "p95", "failure_pct"))


@dataclass
class HistoryRow:
    """One run as the history shows it."""

    folder: str
    started: str
    workload: str
    users: int | None
    rps: float
    logs_per_second: float | None
    p95: float
    failure_pct: float
    audit: str
    flags: tuple[str, ...] = ()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"reports history: {message}\n")


def parser() -> argparse.ArgumentParser:
    """The command line of ``python -m reports history``."""
    cli = _Parser(prog="python -m reports history", description=__doc__.split("\n\n")[0])
    cli.add_argument("runs", type=Path, help="the folder holding the run folders, e.g. reports/runs")
    cli.add_argument("--last", type=_positive, default=20, metavar="N", help="runs per workload to show (20)")
    cli.add_argument("--workload", default="", help="only this workload")
    cli.add_argument("--out", type=Path, help="write history.md and history.png here (default: the runs folder)")
    cli.add_argument("--max-regression-pct", type=non_negative, metavar="P",
                     help="exit 1 when the newest run is worse than the median of the previous N by more than P%%")
    return cli


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return int(text)


def load_history(folder: Path) -> list[HistoryRow]:
    """Every readable run under ``folder``, oldest first (a folder that is not a run is skipped)."""
    if not folder.is_dir():
        raise ReportError(f"{folder}: no such folder of runs")
    rows = []
    for run in sorted(path for path in folder.iterdir() if path.is_dir()):
        if not any(run.glob(f"*{STATS_SUFFIX}")):
            continue
        try:
            data = load_run(run)
            figures = compute(data)
        except ReportError as error:
            sys.stderr.write(f"reports history: skipped {error}\n")
            continue
        info, total = data.run_info or {}, figures.aggregated
        audit = (figures.audit or {}).get("status", "none")
        # A capacity search is no ordinary run of its workload: compared only with other searches.
        workload = str(info.get("workload") or "unknown") + ("-capacity" if data.capacity else "")
        rows.append(HistoryRow(run.name, str(info.get("started_at") or run.name), workload,
                               info.get("users"), total.rps, total.logs_per_second, total.p95, total.failure_pct,
                               audit))  # fmt: skip
    if not rows:
        raise ReportError(f"{folder}: no run folders with a *{STATS_SUFFIX}")
    return sorted(rows, key=lambda row: row.started)


def flag_regressions(rows: list[HistoryRow], window: int, tolerance_pct: float) -> list[HistoryRow]:
    """Each run's figures against the median of up to ``window`` runs before it; worse beyond the tolerance."""
    flagged = []
    for index, row in enumerate(rows):
        before = rows[max(0, index - window) : index]
        flagged.append(HistoryRow(**{**row.__dict__, "flags": tuple(_worse(row, before, tolerance_pct))}))
    return flagged


def _worse(row: HistoryRow, before: list[HistoryRow], tolerance_pct: float) -> list[str]:
    flags = []
    for label, attribute, higher_is_better, floor in FIGURES:
        values = [getattr(run, attribute) for run in before if getattr(run, attribute) is not None]
        current = getattr(row, attribute)
        if not values or current is None:
            continue
        median = statistics.median(values)
        change = (median - current) if higher_is_better else (current - median)
        if change > floor and median and change / abs(median) * 100 > tolerance_pct:
            flags.append(f"{label} {current:,.1f} vs median {median:,.1f} ({change / abs(median):+.0%} worse)")
    return flags


def _chart(workload: str, rows: list[HistoryRow]) -> bytes:
    figure = Figure(figsize=(8.0, 4.5), dpi=90)
    FigureCanvasAgg(figure)
    throughput, latency = figure.subplots(2, 1, sharex=True)
    positions = range(len(rows))
    throughput.plot(positions, [row.rps for row in rows], marker="o", label="requests/s")
    if any(row.logs_per_second is not None for row in rows):
        throughput.plot(positions, [row.logs_per_second or 0 for row in rows], marker="o", label="logs/s")
    throughput.set_title(f"History of the {workload} workload")
    throughput.legend(loc="upper left", fontsize="small")
    latency.plot(positions, [row.p95 for row in rows], marker="o", color="tab:orange", label="p95 ms")
    latency.set_ylabel("p95 ms")
    latency.set_xticks(list(positions), [row.started[:16] for row in rows], rotation=30, fontsize="small")
    for axes in (throughput, latency):
        axes.grid(True, alpha=0.3)
        axes.set_ylim(bottom=0)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _table(rows: list[HistoryRow]) -> Table:
    body = [[row.started, row.folder, str(row.users or ""), f"{row.rps:,.1f}",
             "" if row.logs_per_second is None else f"{row.logs_per_second:,.1f}", f"{row.p95:,.0f}",
             f"{row.failure_pct:.2f}", row.audit, "; ".join(row.flags) or ""] for row in rows]  # fmt: skip
    headers = ["started", "run", "users", "requests/s", "logs/s", "p95 ms", "failure %", "audit", "regression"]
    return Table(headers, body)


def run(args: argparse.Namespace) -> int:
    """Write history.md and one chart per workload, print the table, apply the gate; the exit code."""
    rows = load_history(args.runs)
    workloads = sorted({row.workload for row in rows if not args.workload or row.workload == args.workload})
    if not workloads:
        raise ReportError(f"{args.runs}: no run of workload {args.workload!r}")
    out = args.out or args.runs
    out.mkdir(parents=True, exist_ok=True)
    sections, breaches = [], []
    for workload in workloads:
        runs = flag_regressions([row for row in rows if row.workload == workload], args.last, TOLERANCE * 100)
        shown = runs[-args.last :]
        title = f"{workload}: requests/s, logs/s and p95 over runs"
        chart = Chart(f"history_{workload}.png", title, _chart(workload, shown))
        (out / chart.filename).write_bytes(chart.png)
        sections.append(Section(f"{workload} ({len(shown)} of {len(runs)} runs)", [_table(shown), chart]))
        if args.max_regression_pct is not None and len(runs) > 1:
            newest = flag_regressions(runs[-args.last - 1 :], args.last, args.max_regression_pct)[-1]
            breaches += [f"{workload} {newest.folder}: {flag}" for flag in newest.flags]
    text = render(Document("Run history", sections))
    (out / "history.md").write_text(text)
    sys.stdout.write(text)
    sys.stderr.writelines(f"regression: {line} (> {args.max_regression_pct:g}%)\n" for line in breaches)
    return 1 if breaches else 0


def main(argv: list[str]) -> int:
    """Entry point of ``python -m reports history``."""
    args = parser().parse_args(argv)
    try:
        return run(args)
    except ReportError as error:
        sys.stderr.write(f"reports history: {error}\n")
        return 2
