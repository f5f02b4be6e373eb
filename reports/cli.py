"""``python -m reports RUN``: write report.md, report.html and PNG charts of a Locust run; gate it for CI.

Exit codes: 0 report written and every gate passed; 1 a gate was breached (one ``gate breached:``
line each on stderr); 2 bad input or option (one ``reports:`` line on stderr).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import NoReturn

from reports import document, history, html, markdown
from reports.charts import Chart, render_charts
from reports.compare import Change, compare, regressions
from reports.figures import Figures, compute
from reports.gates import GateResult, Thresholds, count, evaluate, fraction, non_negative
from reports.loading import ReportError, RunData, load_run
from reports.summary import summary

EPILOG = """exit codes: 0 report written, every gate passed; 1 a gate breached; 2 bad input or option.
Gates apply to the Aggregated row; --max-lost to the delivery audit (_audit.json)."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad option in one ``reports:`` line and exits 2."""

    def error(self, message: str) -> NoReturn:
        """One line, no usage block."""
        self.exit(2, f"reports: {message}\n")


def parser() -> argparse.ArgumentParser:
    """The command line of ``python -m reports``."""
    cli = _Parser(
        prog="python -m reports",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Markdown, HTML and PNG report of a Locust run (its --csv files), CI gates.",
    )
    cli.add_argument("run", type=Path, help="run folder (with one <prefix>_stats.csv) or a --csv prefix")
    cli.add_argument("--out", type=Path, help="write the report here (default: the run folder)")
    cli.add_argument("--baseline", type=Path, help="another run to compare with, figure by figure")
    cli.add_argument("--json", action="store_true", help="print the run's summary as JSON on stdout")
    cli.add_argument(
        "--no-charts",
        dest="charts",
        action="store_false",
        help="write report.md and report.html without the PNG charts (a second sooner: CI gates)",
    )
    gates = cli.add_argument_group("gates")
    gates.add_argument(
        "--max-p50-ms",
        type=non_negative,
        metavar="MS",
        help="p50 over all calls (failures included) at most MS; microseconds as decimals (0.8)",
    )
    gates.add_argument(
        "--max-p95-ms",
        type=non_negative,
        metavar="MS",
        help="p95 over all calls (failures included) at most MS, from the suite's HDR histograms "
        "(Locust's when the run has none)",
    )
    gates.add_argument("--max-p99-ms", type=non_negative, metavar="MS",
                       help="p99 over all calls (failures included) at most MS")  # fmt: skip
    gates.add_argument("--max-p95-ok-ms", type=non_negative, metavar="MS",
                       help="p95 of successful calls alone at most MS (from _latency.csv)")  # fmt: skip
    gates.add_argument(
        "--max-failure-rate",
        type=fraction,
        metavar="F",
        help="failures/requests at most F, 0..1 (0.05 = 5%%)",
    )
    gates.add_argument("--min-rps", type=non_negative, metavar="R", help="requests/s (Locust's, whole run) at least R")
    gates.add_argument(
        "--min-logs-per-second", type=non_negative, metavar="L", help="logs acked/s at least L (_logs.csv)"
    )
    gates.add_argument("--max-lost", type=count, metavar="N", help="logs lost at most N (needs the delivery audit)")
    gates.add_argument("--max-visibility-p95-ms", type=non_negative, metavar="MS",
                       help="p95 of visibility latency (acknowledgement to the first QueryLog that returns a log) at "
                       "most MS (_freshness.csv; more than 5%% of samples never visible breaches it)")  # fmt: skip
    return cli


def _title(figures: Figures, data: RunData) -> str:
    workload = figures.parameters.get("workload") or data.prefix.name
    run_id = figures.parameters.get("run id")
    return f"Load test report: {workload}" + (f" ({run_id})" if run_id else "")


def _write(out: Path, report_md: str, report_html: str, charts: list[Chart]) -> list[Path]:
    try:
        out.mkdir(parents=True, exist_ok=True)
        files = [out / "report.md", out / "report.html"]
        files[0].write_text(report_md, encoding="utf-8")
        files[1].write_text(report_html, encoding="utf-8")
        for chart in charts:
            (out / chart.filename).write_bytes(chart.png)
            files.append(out / chart.filename)
    except OSError as error:
        raise ReportError(f"{out}: cannot write the report ({error.strerror or error})") from None
    return files


def _text_table(table: document.Table) -> str:
    rows = [table.headers, *table.rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(table.headers))]
    numeric = [table.numeric(i) for i in range(len(widths))]
    lines = [
        "  ".join(cell.rjust(widths[i]) if numeric[i] else cell.ljust(widths[i]) for i, cell in enumerate(row))
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines)


def _terminal(figures: Figures, files: list[Path], changes: list[Change] | None) -> str:
    total = figures.aggregated
    logs = f", {document.rate(total.logs_per_second)} logs/s" if figures.has_logs else ""
    lines = [
        f"report: {files[0]} ({files[1].name}, {len(files) - 2} chart(s))",
        f"Aggregated: {document.count(total.requests)} requests, {document.count(total.failures)} failures "
        f"({document.percent(total.failure_pct)}), {document.rate(total.rps)} requests/s{logs}, "
        f"p50 {document.ms_with_unit(total.p50)}, p95 {document.ms_with_unit(total.p95)}, p99 "
        f"{document.ms_with_unit(total.p99)} "
        f"({document.latency_source(figures)})",
    ]
    if figures.capacity is not None:
        lines.append(figures.capacity["answer"])
    if figures.freshness is not None:
        fresh = figures.freshness
        never = f", {fresh.never_visible:,} never visible" if fresh.never_visible else ""
        unknown = f", {fresh.unknown:,} unknown" if fresh.unknown else ""
        lines.append(f"Freshness: p50 {document.ms_with_unit(fresh.p50)}, p95 {document.ms_with_unit(fresh.p95)}, "
                     f"max {document.ms_with_unit(fresh.max_ms)} from acknowledgement to visible ({fresh.visible:,} of "
                     f"{fresh.samples:,} samples{never}{unknown}; {fresh.error_bound()})")  # fmt: skip
    if figures.peers is not None:
        lines += [f"warning: {warning}" for warning in figures.peers.warnings()]
    if changes is not None:
        lines += [
            "",
            _text_table(document.comparison_table(changes)),
            f"{len(regressions(changes))} regression(s) against the baseline",
        ]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """Load, compute, write the report, print the summary and the gates; the exit code."""
    data = load_run(args.run)
    figures = compute(data)
    changes, baseline = None, None
    if args.baseline is not None:
        baseline = compute(load_run(args.baseline))
        changes = compare(figures, baseline)
    charts = render_charts(figures, baseline) if args.charts else None
    report = document.build(
        figures,
        charts,
        derived=data.run_info is None,
        title=_title(figures, data),
        changes=changes,
        baseline=str(args.baseline),
    )
    files = _write(args.out or data.prefix.parent, markdown.render(report), html.render(report), charts or [])
    thresholds = Thresholds(
        args.max_p95_ms,
        args.max_failure_rate,
        args.min_rps,
        args.min_logs_per_second,
        args.max_lost,
        args.max_p95_ok_ms,
        args.max_p50_ms,
        args.max_p99_ms,
        args.max_visibility_p95_ms,
    )
    gates: list[GateResult] = evaluate(figures, thresholds)
    if args.json:
        sys.stdout.write(json.dumps(summary(figures, gates), indent=2, default=str) + "\n")
    else:
        sys.stdout.write(_terminal(figures, files, changes))
        sys.stdout.writelines(f"gate passed: {gate.line}\n" for gate in gates if gate.passed)
    sys.stderr.writelines(f"gate breached: {gate.line}\n" for gate in gates if not gate.passed)
    return 1 if any(not gate.passed for gate in gates) else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m reports`` and ``grpc-log-report``."""
    logging.basicConfig(level=logging.WARNING, format="reports: %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["history"]:
        return history.main(argv[1:])
    args = parser().parse_args(argv)
    try:
        return run(args)
    except ReportError as error:
        sys.stderr.write(f"reports: {error}\n")
        return 2
