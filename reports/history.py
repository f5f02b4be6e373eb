"""``python -m reports history DIR``: how did each run compare with the ones before it?

Reads every run folder under DIR (each with one ``<prefix>_stats.csv``) and compares like with like:
ordinary runs are grouped by workload and load model (closed, pacing at a rate, open model at a rate or
ramp, from ``_run.json``), each shown with its date, users, requests/s, logs/s, p95, failure % and
audit status; a capacity search is compared by its answer (logs/s sustained, per batch size), and a
search that ended without one (stopped, interrupted) is shown as interrupted and compared with
nothing. A figure worse than the median of the previous runs of its group by more than the baseline
comparison's tolerance (``reports.compare``) is flagged, visibility latency's p95 too (between runs that both have
one, beyond the newest run's measured error bound). ``--max-regression-pct P`` is a CI gate:
the newest run of each group against the median of the previous ``--last`` runs, exit 1 beyond P%.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from grpc_user.run_files.schema import STATS
from reports.charts import Chart, new_figure
from reports.compare import HDR_FLOOR_MS, LATENCIES, METRICS, TOLERANCE
from reports.document import Document, Section, Table, ms
from reports.figures import HDR, compute, describe_rate
from reports.gates import non_negative
from reports.loading import ReportError, load_run
from reports.markdown import render

# The baseline comparison's figures (label, attribute, higher is better, noise floor) that the history shows, and
# visibility latency's p95 (its floor: the newest run's measured error bound, when larger).
VISIBILITY = ("visibility p95 ms", "visibility_p95", False, 1.0)
FIGURES = (*(metric for metric in METRICS if metric[1] in ("rps", "logs_per_second", "p95", "failure_pct")), VISIBILITY)
# A capacity search's figure: its answer.
CAPACITY_FIGURES = (("logs/s sustained", "sustained", True, 0.0),)
RUN, CAPACITY, INTERRUPTED = "run", "capacity", "interrupted"


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
    visibility_p95: float | None = None
    # The largest gap between the freshness probe's polls that saw a sample: how late visibility_p95 may be.
    visibility_bound: float | None = None
    # Whether the run measured freshness (a _freshness.csv): without a visible sample its p95 is n/a, not unmeasured.
    visibility_measured: bool = False
    flags: tuple[str, ...] = ()
    kind: str = RUN
    sustained: float | None = None
    answer: str = ""
    # True when p95 comes from the suite's HDR histograms (to the microsecond), not Locust's whole milliseconds.
    hdr: bool = False


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"reports history: {message}\n")


def parser() -> argparse.ArgumentParser:
    """The command line of ``python -m reports history``."""
    cli = _Parser(prog="python -m reports history", description=__doc__.split("\n\n")[0])
    cli.add_argument("runs", type=Path, help="the folder holding the run folders, e.g. reports/runs")
    cli.add_argument("--last", type=_positive, default=20, metavar="N", help="runs per workload to show (20)")
    cli.add_argument("--workload", default="", help="only this workload")
    cli.add_argument(
        "--out",
        type=Path,
        help="write history.md and one history_<workload>.png per workload here (default: the runs folder)",
    )
    cli.add_argument(
        "--max-regression-pct",
        type=non_negative,
        metavar="P",
        help="exit 1 when the newest run is worse than the median of the previous N by more than P%%",
    )
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
        stats = list(run.glob(f"*{STATS.suffix}"))
        if not stats or all(path.stat().st_size == 0 for path in stats):
            continue  # not a run, or one that never started (Locust opened its files, then refused to start)
        try:
            data = load_run(run)
            figures = compute(data)
        except ReportError as error:
            sys.stderr.write(f"reports history: skipped {error}\n")
            continue
        info, total = data.run_info or {}, figures.aggregated
        audit = (figures.audit or {}).get("status", "none")
        fresh = figures.freshness
        row = HistoryRow(run.name, str(info.get("started_at") or run.name), "", info.get("users"), total.rps,
                         total.logs_per_second, total.p95, total.failure_pct, audit,
                         fresh.p95 if fresh is not None else None,
                         fresh.max_poll_gap_ms if fresh is not None else None, fresh is not None,
                         hdr=figures.latency_source == HDR)  # fmt: skip
        rows += _grouped(row, info, data.capacity)
    if not rows:
        raise ReportError(f"{folder}: no run folders with a *{STATS.suffix}")
    return sorted(rows, key=lambda row: row.started)


def _grouped(row: HistoryRow, info: dict, capacity: dict | None) -> list[HistoryRow]:
    """The history rows of one run: an ordinary run in its workload and load model's group; a capacity search by
    its answer, one row per batch size searched; a search without an answer as interrupted."""
    workload = str(info.get("workload") or "unknown")
    options = info.get("options")
    if not isinstance(options, dict):
        options = {}
    if capacity is None and not options.get("capacity"):
        return [HistoryRow(**{**row.__dict__, "workload": f"{workload}, {_load_model(options)}"})]
    group = f"{workload}-capacity"
    if capacity is None:
        return [
            HistoryRow(
                **{
                    **row.__dict__,
                    "workload": group,
                    "kind": INTERRUPTED,
                    "answer": "interrupted: the search ended without an answer (no capacity.json)",
                }
            )
        ]
    found = capacity.get("batch_sizes") or [capacity]
    return [HistoryRow(**{**row.__dict__, "kind": CAPACITY,
                          "workload": group + (f", batch of {size}" if (size := each.get("batch_size")) else ""),
                          "sustained": float(each.get("max_sustainable_logs_per_second") or 0.0),
                          "answer": _answer(capacity, each)})
            for each in found]  # fmt: skip


def _answer(capacity: dict, found: dict) -> str:
    """The search's one-line answer, or for one batch size of a sweep its own in a few words."""
    if not capacity.get("batch_sizes"):
        return str(capacity.get("answer") or "")
    cause = (found.get("breaking_cause") or {}).get("status", "")
    return (
        f"{float(found.get('max_sustainable_logs_per_second') or 0):,.0f} logs/s sustained "
        f"({float(found.get('max_sustainable_rps') or 0):,.0f} calls/s) in batches of {found.get('batch_size')}; "
        f"broken by {cause}"
    )


def _load_model(options: dict) -> str:
    """The group of an ordinary run: its load model and offered rate."""
    if options.get("arrival_rate"):
        return f"open model at {describe_rate(str(options['arrival_rate']))}"
    if options.get("target_rps"):
        return f"pacing at {float(options['target_rps']):,g} calls/s"
    return "closed model"


def flag_regressions(rows: list[HistoryRow], window: int, tolerance_pct: float) -> list[HistoryRow]:
    """Each run's figures against the median of up to ``window`` runs before it; worse beyond the tolerance. An
    interrupted search is compared with nothing and is no baseline."""
    flagged = []
    for index, row in enumerate(rows):
        before = [earlier for earlier in rows[max(0, index - window) : index] if earlier.kind != INTERRUPTED]
        flags = () if row.kind == INTERRUPTED else tuple(_worse(row, before, tolerance_pct))
        flagged.append(HistoryRow(**{**row.__dict__, "flags": flags}))
    return flagged


def _worse(row: HistoryRow, before: list[HistoryRow], tolerance_pct: float) -> list[str]:
    flags = []
    for label, attribute, higher_is_better, floor in CAPACITY_FIGURES if row.kind == CAPACITY else FIGURES:
        values = [getattr(run, attribute) for run in before if getattr(run, attribute) is not None]
        current = getattr(row, attribute)
        if not values or current is None:
            continue
        median = statistics.median(values)
        if attribute in LATENCIES and row.hdr and all(run.hdr for run in before):
            floor = HDR_FLOOR_MS  # as the baseline comparison does when both runs have HDR histograms
        if attribute == VISIBILITY[1]:
            floor = max(floor, row.visibility_bound or 0.0)  # a change within the figure's own error is no regression
        change = (median - current) if higher_is_better else (current - median)
        if change > floor and median and change / abs(median) * 100 > tolerance_pct:
            digits = 3 if label.endswith(" ms") else 1  # latencies to the microsecond, as the table shows them
            flags.append(f"{label} {current:,.{digits}f} vs median {median:,.{digits}f} "
                         f"({change / abs(median):+.0%} worse)")  # fmt: skip
    return flags


def _chart(workload: str, rows: list[HistoryRow]) -> bytes:
    figure = new_figure(8.0, 4.5)
    throughput, latency = figure.subplots(2, 1, sharex=True)
    positions = range(len(rows))
    if any(row.kind == CAPACITY for row in rows):
        throughput.plot(positions, [row.sustained or 0 for row in rows], marker="o", label="logs/s sustained")
    else:
        throughput.plot(positions, [row.rps for row in rows], marker="o", label="requests/s")
    if any(row.logs_per_second is not None for row in rows) and not any(row.kind == CAPACITY for row in rows):
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
    if any(row.kind != RUN for row in rows):
        body = [[row.started, row.folder, "interrupted" if row.kind == INTERRUPTED else f"{row.sustained:,.0f}",
                 row.answer, row.audit, "; ".join(row.flags) or ""] for row in rows]  # fmt: skip
        return Table(["started", "run", "logs/s sustained", "answer", "audit", "regression"], body)
    body = [[row.started, row.folder, str(row.users or ""), f"{row.rps:,.1f}",
             "" if row.logs_per_second is None else f"{row.logs_per_second:,.1f}", ms(row.p95),
             f"{row.failure_pct:.2f}", row.audit, _visibility(row), "; ".join(row.flags) or ""]
            for row in rows]  # fmt: skip
    headers = ["started", "run", "users", "requests/s", "logs/s", "p95 ms", "failure %", "audit",
               "visibility p95 ms", "regression"]  # fmt: skip
    return Table(headers, body)


def _visibility(row: HistoryRow) -> str:
    """The visibility p95 cell: the figure, ``n/a`` when no sample became visible, empty for a run that did not
    measure freshness (``--no-freshness``, or a run before the probe)."""
    if row.visibility_p95 is not None:
        return ms(row.visibility_p95)
    return "n/a" if row.visibility_measured else ""


def _file_name(group: str) -> str:
    """A group's name as a file name: ``single, open model at 100 calls/s`` -> ``single_open_model_at_100_calls_s``."""
    return "_".join("".join(c if c.isalnum() or c in ".-" else " " for c in group).split())


def run(args: argparse.Namespace) -> int:
    """Write history.md and one chart per workload, print the table, apply the gate; the exit code."""
    rows = load_history(args.runs)
    workloads = sorted(
        {
            row.workload
            for row in rows
            if not args.workload or row.workload.split(",")[0].removesuffix("-capacity") == args.workload
        }
    )
    if not workloads:
        raise ReportError(f"{args.runs}: no run of workload {args.workload!r}")
    out = args.out or args.runs
    out.mkdir(parents=True, exist_ok=True)
    sections, breaches = [], []
    for workload in workloads:
        runs = flag_regressions([row for row in rows if row.workload == workload], args.last, TOLERANCE * 100)
        shown = runs[-args.last :]
        title = f"{workload}: requests/s, logs/s and p95 over runs"
        chart = Chart(f"history_{_file_name(workload)}.png", title, _chart(workload, shown))
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
