"""``python -m reports``: figures equal to Locust's CSVs, charts, HTML, gates, JSON, baseline, bad input."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from locust_runs import PACED, ROOT, locust_csv_header, python_m, run_locust, shared_by_workers

from grpc_user.histograms import LatencyHistograms
from grpc_user.run_files import read_histograms, write_histograms
from reference_server.process import start_server_process
from reports.cli import main
from reports.document import ms
from reports.history import main as history_main

pytestmark = pytest.mark.slow

FAILURES_HEADER = ["Method", "Name", "Error", "Occurrences", "First Seen", "Last Seen"]


def _real_run(folder: Path) -> None:
    server = start_server_process("--flush-period", "0.1")
    try:
        run = run_locust("mixed", f"grpc://{server.target}", folder, *PACED, users=5, run_time="5s")
    finally:
        server.stop()
    assert Path(f"{run.prefix}_stats.csv").is_file(), run.stderr[-2000:]


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """One real headless mixed run (5 users paced to 100 calls/s, 5 s) against the reference server, made once per
    session for every test process; its folder (prefix mixed), which tests copy and never change. 5 s: a busy
    machine's Locust writes its history rows late, and 3 s left no steady interval for a sustained rate."""
    return shared_by_workers(tmp_path_factory, worker_id, "real-run", _real_run)


@pytest.fixture(scope="module")
def real_report(real_run: Path, tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """The report of the real run, charts and all, written in-process into its own folder once per session for every
    test process (1.3 CPU-s each time); tests read it, never change it."""

    def write(out: Path) -> None:
        assert report(real_run, "--out", str(out)) == 0

    return shared_by_workers(tmp_path_factory, worker_id, "real-report", write)


def report(*args: object) -> int:
    """``main`` in-process, its stdout swallowed; the exit code."""
    with contextlib.redirect_stdout(io.StringIO()):
        return main([str(arg) for arg in args])


def cli(*args: object) -> subprocess.CompletedProcess[str]:
    """``python -m reports`` as a subprocess: for its exit codes and a clean stderr as a user sees them."""
    command = [*python_m("reports"), *map(str, args)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)


def in_process(*args: object) -> subprocess.CompletedProcess[str]:
    """``main`` in-process as ``python -m reports`` runs it (``sys.exit(main())``), without a process's 2 CPU-seconds
    of imports: its exit code (argparse's ``SystemExit`` too), stdout and stderr."""
    argv = [str(arg) for arg in args]
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code
    return subprocess.CompletedProcess(["reports", *argv], code, stdout.getvalue(), stderr.getvalue())


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def markdown_table(text: str, section: str) -> dict[str, dict[str, str]]:
    """The first table under ``## section`` of report.md, rows by their first cell."""
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    table = body[body.index("\n|") + 1 :].split("\n\n", 1)[0].splitlines()
    headers = [cell.strip() for cell in table[0].strip("|").split("|")]
    parsed = [[cell.strip() for cell in line.strip("|").split(" | ")] for line in table[2:]]
    return {cells[0]: dict(zip(headers, cells, strict=True)) for cells in parsed}


def write_csv(path: Path, header: list[str], body: list[list[object]]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(body)


def stats_row(kind: str, name: str, requests: int, failures: int, rps: float, p95: int = 12) -> list[object]:
    return [
        kind,
        name,
        requests,
        failures,
        5,
        6.1,
        0.5,
        40.2,
        100.0,
        rps,
        rps * failures / max(requests, 1),
        5,
        6,
        7,
        8,
        10,
        p95,
        20,
        25,
        30,
        40,
        40,
    ]


def plain_run(
    folder: Path,
    rpcs: list[tuple[str, int, int]],
    *,
    prefix: str = "plain",
    history: bool = True,
    failures: Sequence[tuple[str, str, int]] = (),
    idle_tail: int = 0,
) -> Path:
    """Locust's own files of a 10 s plain run (no sidecar), by hand; rpcs are (name, requests, failures).

    ``idle_tail``: history rows Locust goes on writing with 0 users after the stop (during an audit)."""
    folder.mkdir(parents=True, exist_ok=True)
    total, failed = sum(r for _, r, _ in rpcs), sum(f for _, _, f in rpcs)
    body = [stats_row("GET", name, requests, fails, requests / 10) for name, requests, fails in rpcs]
    write_csv(
        folder / f"{prefix}_stats.csv",
        locust_csv_header("stats"),
        [*body, stats_row("", "Aggregated", total, failed, total / 10)],
    )
    write_csv(folder / f"{prefix}_failures.csv", FAILURES_HEADER, [["GET", n, e, c, "", ""] for n, e, c in failures])
    (folder / f"{prefix}_exceptions.csv").write_text("Count,Message,Traceback,Nodes\n")
    if history:
        lines = [[1000, 0, "", "Aggregated", 0, 0, *["N/A"] * 11, 0, 0, 0, 0.0, 0, 0, 0]]
        for second in range(1, 11):
            users = min(second * 2, 4)
            for name, requests, fails in [*rpcs, ("Aggregated", total, failed)]:
                kind = "" if name == "Aggregated" else "GET"
                lines.append(
                    [
                        1000 + second,
                        users,
                        kind,
                        name,
                        requests / 10,
                        fails / 10,
                        5,
                        6,
                        7,
                        8,
                        10,
                        12,
                        20,
                        25,
                        30,
                        40,
                        40,
                        requests * second // 10,
                        fails * second // 10,
                        5,
                        6.0,
                        0.5,
                        40,
                        100,
                    ]
                )
        for second in range(11, 11 + idle_tail):
            lines.append([1000 + second, 0, "", "Aggregated", 0, 0, *[40] * 11, total, failed, 5, 6.0, 0.5, 40, 100])
        write_csv(folder / f"{prefix}_stats_history.csv", locust_csv_header("stats_history"), lines)
    return folder


# --- figures of a real run -------------------------------------------------------------------------------


def test_per_rpc_figures_equal_locusts_stats_csv_and_the_runs_hdr_histograms(real_run: Path, real_report: Path) -> None:
    table = markdown_table((real_report / "report.md").read_text(), "Requests per RPC")
    stats = rows(real_run / "mixed_stats.csv")
    latency = read_histograms(str(real_run / "mixed_histograms.json"))["latency"]
    assert set(table) == {row["Name"] for row in stats}
    for row in stats:
        shown = table[row["Name"]]
        assert shown["requests"] == f"{int(row['Request Count']):,}"
        assert shown["failures"] == f"{int(row['Failure Count']):,}"
        assert shown["requests/s"] == f"{float(row['Requests/s']):,.1f}"
        hdr = latency.combined(name=None if row["Name"] == "Aggregated" else row["Name"])
        assert hdr.count == int(row["Request Count"]), "every call is in the histograms"
        assert shown["p95 ms"] == ms(hdr.value_at(95.0) / 1000)
        assert shown["max ms"] == ms(hdr.high() / 1000)


def test_logs_per_second_is_logs_acked_over_the_window_of_locusts_requests_per_second(
    real_run: Path, real_report: Path
) -> None:
    """Logs/s and requests/s share one window, after a stats reset too (Locust's window, not the run's)."""
    table = markdown_table((real_report / "report.md").read_text(), "Requests per RPC")
    window = {row["Name"]: int(row["Request Count"]) / float(row["Requests/s"])
              for row in rows(real_run / "mixed_stats.csv") if float(row["Requests/s"]) > 0}  # fmt: skip
    for row in rows(real_run / "mixed_logs.csv"):
        assert table[row["Name"]]["logs/s"] == f"{int(row['Logs Acked']) / window[row['Name']]:,.1f}"


def test_report_has_failure_causes_latency_split_audit_and_throughput(real_report: Path) -> None:
    text = (real_report / "report.md").read_text()
    for section in (
        "## Run",
        "## Throughput",
        "## Failures by cause",
        "## Latency by outcome",
        "## Delivery audit",
    ):
        assert section in text
    throughput = markdown_table(text, "Throughput")
    assert throughput["requests/s"]["peak"] != "n/a" and throughput["logs acked/s"]["sustained"] != "n/a"


def test_charts_are_png_files(real_report: Path) -> None:
    charts = sorted(real_report.glob("report_*.png"))
    assert {"report_throughput.png", "report_latency.png", "report_users.png"} <= {c.name for c in charts}
    for chart in charts:
        data = chart.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000


def test_html_is_self_contained(real_report: Path) -> None:
    page = (real_report / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 3
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and "<link" not in page
    assert "Requests per RPC" in page and "Delivery audit" in page


# --- gates -------------------------------------------------------------------------------------------


def test_gates_that_hold_exit_0_and_are_listed(real_run: Path, tmp_path: Path) -> None:
    done = cli(real_run, "--out", tmp_path, "--max-p95-ms", "100000", "--max-failure-rate", "1", "--min-rps", "0")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("gate passed:") == 3 and done.stderr == ""


def test_each_breached_gate_is_one_line_and_exit_1(real_run: Path, tmp_path: Path) -> None:
    done = cli(
        real_run,
        "--no-charts",
        "--out",
        tmp_path,
        "--max-p95-ms",
        "0",
        "--min-rps",
        "1e9",
        "--min-logs-per-second",
        "1e9",
        "--max-failure-rate",
        "1",
    )
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 3 and all(line.startswith("gate breached: ") for line in lines)
    assert any(line.startswith("gate breached: p95 ") and "> --max-p95-ms 0" in line for line in lines)
    assert "gate passed: failure rate" in done.stdout


def test_max_lost_without_an_audit_is_breached(tmp_path: Path) -> None:
    folder = plain_run(tmp_path / "plain", [("/", 100, 0)])
    done = in_process(folder, "--max-lost", "0", "--no-charts")
    assert done.returncode == 1
    assert done.stderr == "gate breached: --max-lost 0: no delivery audit in this run\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-p95-ms", "-5"], "reports: argument --max-p95-ms: must be >= 0, got '-5'"),
        (["--min-rps", "fast"], "reports: argument --min-rps: must be a number, got 'fast'"),
        (["--max-failure-rate", "5"], "reports: argument --max-failure-rate: must be a fraction from 0 to 1"),
        (["--max-lost", "-1"], "reports: argument --max-lost: must be a whole number >= 0, got '-1'"),
    ],
)
def test_bad_gate_values_are_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    done = in_process(plain_run(tmp_path / "plain", [("/", 10, 0)]), *args)
    assert done.returncode == 2
    assert done.stderr.startswith(message) and len(done.stderr.splitlines()) == 1


# --- JSON and baseline -----------------------------------------------------------------------------


def test_json_summary_counts_logs_and_groups_errors_by_cause(real_run: Path, tmp_path: Path) -> None:
    done = in_process(real_run, "--out", tmp_path, "--json", "--no-charts")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    logs = {row["Name"]: row for row in rows(real_run / "mixed_logs.csv")}["Aggregated"]
    stats = {row["Name"]: row for row in rows(real_run / "mixed_stats.csv")}["Aggregated"]
    assert summary["counted"] == "logs"
    assert summary["total_count"] == int(logs["Logs Sent"])
    assert summary["success_count"] == int(logs["Logs Acked"])
    assert summary["failed_count"] == int(logs["Logs Sent"]) - int(logs["Logs Acked"])
    assert summary["requests"] == int(stats["Request Count"])
    assert summary["requests_per_second"] == pytest.approx(float(stats["Requests/s"]), abs=0.001)
    assert summary["run_id"] == json.loads((real_run / "mixed_run.json").read_text())["run_id"]
    assert summary["audit"]["acked"] == int(logs["Logs Acked"])
    expected: dict[str, int] = {}
    for row in rows(real_run / "mixed_failures.csv"):
        cause = row["Error"].split(":", 1)[0]
        expected[cause] = expected.get(cause, 0) + int(row["Occurrences"])
    assert {cause: entry["count"] for cause, entry in summary["error_summary"].items()} == expected
    assert all(1 <= len(entry["samples"]) <= 3 for entry in summary["error_summary"].values())
    assert (tmp_path / "report.md").is_file()


def test_json_summary_counts_the_exceptions_raised_in_tasks(tmp_path: Path) -> None:
    folder = plain_run(tmp_path / "run", [("WriteLog", 100, 0)])
    write_csv(folder / "plain_exceptions.csv", ["Count", "Message", "Traceback", "Nodes"],
              [[3540, "ValueError('no such adv_id')", "  File \"x.py\", line 3", "local"],
               [4, "KeyError('level')", "  File \"x.py\", line 9", "local"]])  # fmt: skip
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main([str(folder), "--out", str(tmp_path / "out"), "--json"]) == 0
    summary = json.loads(stdout.getvalue())
    assert summary["exceptions"] == {
        "count": 3544,
        "by_message": [
            {"count": 3540, "message": "ValueError('no such adv_id')"},
            {"count": 4, "message": "KeyError('level')"},
        ],
    }
    assert summary["error_summary"] == {}, "no request failed: the exceptions are counted apart"


def test_baseline_comparison_flags_lower_throughput_and_higher_latency(real_run: Path, tmp_path: Path) -> None:
    slower = tmp_path / "slower"
    shutil.copytree(real_run, slower)
    stats = rows(real_run / "mixed_stats.csv")
    for row in stats:
        row["Requests/s"] = str(float(row["Requests/s"]) / 2)
        row["95%"] = str(int(float(row["95%"])) * 3 + 10)
    write_csv(slower / "mixed_stats.csv", list(stats[0]), [list(row.values()) for row in stats])
    latency = read_histograms(str(real_run / "mixed_histograms.json"))["latency"]
    tripled = LatencyHistograms()
    for (name, outcome), latencies in latency.by_key.items():
        for lowest, _highest, times in latencies.recorded():
            tripled.record(name, outcome, lowest * 3 + 10_000)
            tripled.by_key[(name, outcome)].record(lowest * 3 + 10_000, times - 1)
    write_histograms(str(slower / "mixed"), {"latency": tripled})
    done = in_process(slower, "--baseline", real_run, "--no-charts")
    assert done.returncode == 0, done.stderr
    assert "regression(s) against the baseline" in done.stdout
    text = (slower / "report.md").read_text()
    comparison = text.split("## Comparison with the baseline", 1)[1].split("\n## ", 1)[0]
    rps_row = next(line for line in comparison.splitlines() if line.startswith("| Aggregated | requests/s"))
    assert "-50.00%" in rps_row and "REGRESSION" in rps_row
    p95_row = next(line for line in comparison.splitlines() if line.startswith("| Aggregated | p95 ms"))
    assert "REGRESSION" in p95_row
    assert re.search(r"\| [+-]?[\d,]+\.\d{3} \|", p95_row), f"latencies compared to the microsecond: {p95_row}"
    p50_row = next(line for line in comparison.splitlines() if line.startswith("| Aggregated | p50 ms"))
    assert "REGRESSION" in p50_row, "the HDR histograms (every latency tripled) drive every percentile"


def test_a_run_against_itself_has_no_regression(real_run: Path, tmp_path: Path) -> None:
    assert report(real_run, "--out", tmp_path, "--baseline", real_run, "--no-charts") == 0
    assert "No regression beyond 5%." in (tmp_path / "report.md").read_text()


# --- hand-made runs ----------------------------------------------------------------------------------


def test_plain_locust_files_without_sidecars(tmp_path: Path) -> None:
    folder = plain_run(
        tmp_path / "plain",
        [("/", 90, 10), ("/items", 10, 0)],
        failures=[
            ("/", "HTTPError('500 Server Error: boom for url: /')", 6),
            ("/", "CatchResponseError('Got wrong response')", 4),
        ],
    )
    assert report(folder) == 0
    text = (folder / "report.md").read_text()
    table = markdown_table(text, "Requests per RPC")
    assert "logs/s" not in table["Aggregated"] and table["/"]["failure %"] == "11.11%"
    causes = markdown_table(text, "Failures by cause")
    assert causes["500 Server Error"]["count"] == "6" and causes["CatchResponseError"]["count"] == "4"
    assert "## Delivery audit" not in text and "## Latency by outcome" not in text
    parameters = markdown_table(text, "Run")
    assert parameters["duration (s)"]["value"] == "10.0" and parameters["users"]["value"] == "4"
    summary = json.loads(in_process(folder, "--json").stdout)
    assert summary["counted"] == "requests" and summary["total_count"] == 100 and summary["failed_count"] == 10
    assert summary["audit"] is None


def test_steady_state_excludes_ramp_up_and_the_last_interval(tmp_path: Path) -> None:
    folder = plain_run(tmp_path / "plain", [("/", 100, 0)])
    assert report(folder) == 0
    throughput = markdown_table((folder / "report.md").read_text(), "Throughput")["requests/s"]
    assert throughput["sustained"] == "10.0" and throughput["peak"] == "10.0"


def test_the_idle_history_after_the_stop_is_not_steady_state(tmp_path: Path) -> None:
    folder = plain_run(tmp_path / "plain", [("/", 100, 0)], idle_tail=20)
    assert report(folder) == 0
    throughput = markdown_table((folder / "report.md").read_text(), "Throughput")["requests/s"]
    assert throughput["sustained"] == "10.0" and throughput["peak"] == "10.0"


def test_all_requests_failed(tmp_path: Path) -> None:
    folder = plain_run(
        tmp_path / "fail",
        [("WriteLog", 50, 50)],
        failures=[("WriteLog", "UNAVAILABLE: connection refused", 50)],
    )
    assert report(folder, "--max-failure-rate", "0.5") == 1
    text = (folder / "report.md").read_text()
    assert markdown_table(text, "Requests per RPC")["Aggregated"]["failure %"] == "100.00%"
    assert markdown_table(text, "Failures by cause")["UNAVAILABLE"]["count"] == "50"
    assert (folder / "report_failures.png").is_file()


def test_one_rpc_and_many_rpcs(tmp_path: Path) -> None:
    one = plain_run(tmp_path / "one", [("WriteLog", 10, 0)])
    many = plain_run(tmp_path / "many", [(f"Rpc{i:02d}", 10 + i, 0) for i in range(25)])
    assert report(one) == 0 and report(many) == 0
    assert set(markdown_table((one / "report.md").read_text(), "Requests per RPC")) == {
        "WriteLog",
        "Aggregated",
    }
    table = markdown_table((many / "report.md").read_text(), "Requests per RPC")
    assert len(table) == 26 and table["Rpc24"]["requests"] == "34"


def test_without_history_there_are_no_charts(tmp_path: Path) -> None:
    folder = plain_run(tmp_path / "flat", [("/", 10, 0)], history=False)
    assert report(folder) == 0
    assert not list(folder.glob("report_*.png"))
    assert "no charts" in (folder / "report.md").read_text()
    assert markdown_table((folder / "report.md").read_text(), "Throughput")["requests/s"]["peak"] == "n/a"


def test_no_charts_writes_the_same_report_without_its_pngs(real_run: Path, real_report: Path, tmp_path: Path) -> None:
    assert report(real_run, "--out", tmp_path, "--no-charts") == 0
    assert not list(tmp_path.glob("report_*.png")) and list(real_report.glob("report_*.png"))
    plain, drawn = (tmp_path / "report.md").read_text(), (real_report / "report.md").read_text()
    assert "Not drawn (--no-charts)." in plain
    assert plain.split("## Charts")[0] == drawn.split("## Charts")[0], "only the charts differ"


def test_a_csv_prefix_and_a_folder_with_several_runs(tmp_path: Path) -> None:
    plain_run(tmp_path, [("/", 10, 0)], prefix="first")
    plain_run(tmp_path, [("/", 20, 0)], prefix="second")
    done = in_process(tmp_path)
    assert done.returncode == 2 and "several Locust runs" in done.stderr
    assert report(tmp_path / "second") == 0
    assert markdown_table((tmp_path / "report.md").read_text(), "Requests per RPC")["/"]["requests"] == "20"


def _empty(folder: Path) -> None:
    (folder / "x_stats.csv").write_text(",".join(locust_csv_header("stats")) + "\n")


def _zero_requests(folder: Path) -> None:
    write_csv(
        folder / "x_stats.csv",
        locust_csv_header("stats"),
        [["", "Aggregated", 0, 0, 0, 0.0, 0, 0, 0, 0.0, 0.0, *["N/A"] * 11]],
    )


def _truncated(folder: Path) -> None:
    plain_run(folder, [("/", 10, 0)], prefix="x")
    text = (folder / "x_stats.csv").read_text()
    (folder / "x_stats.csv").write_text(text[: text.index("Aggregated") + 14])


def _foreign(folder: Path) -> None:
    write_csv(folder / "x_stats.csv", ["id", "colour", "weight"], [[1, "red", 3.5], [2, "blue", 1.0]])


def _garbage(folder: Path) -> None:
    (folder / "x_stats.csv").write_bytes(bytes(range(256)) * 20)


def _truncated_history(folder: Path) -> None:
    plain_run(folder, [("/", 10, 0)], prefix="x")
    text = (folder / "x_stats_history.csv").read_text()
    (folder / "x_stats_history.csv").write_text(text[: len(text) // 2] + "\n17,abc\n")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_empty, "no rows (header only)"),
        (_zero_requests, "0 requests"),
        (_truncated, "x_stats.csv: line 3"),
        (_foreign, "missing column(s) Type, Name"),
        (_garbage, "x_stats.csv"),
        (_truncated_history, "x_stats_history.csv"),
    ],
)
def test_bad_files_are_one_line_and_exit_2(tmp_path: Path, make, message: str) -> None:
    make(tmp_path)
    done = in_process(tmp_path)
    assert done.returncode == 2, done.stdout
    assert done.stderr.startswith("reports: ") and message in done.stderr
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr


@pytest.mark.parametrize("where", ["missing-folder/run", "no-such-prefix"])
def test_missing_folder_or_prefix_is_one_line_and_exit_2(tmp_path: Path, where: str) -> None:
    plain_run(tmp_path, [("/", 10, 0)])
    done = in_process(tmp_path / where)
    assert done.returncode == 2
    assert done.stderr.startswith(f"reports: {tmp_path / where}: no such run folder")
    assert len(done.stderr.splitlines()) == 1


NUMBER_FILES = ("stats", "stats_history", "failures", "exceptions", "logs", "logs_history", "latency")


def numeric_columns(run: Path, kind: str) -> tuple[Path, list[str], list[list[str]], list[int]]:
    """The run's ``<prefix>_<kind>.csv``: its path, header, rows and the indexes of the last row's numeric cells."""
    prefix = next(run.glob("*_stats.csv")).name[: -len("_stats.csv")]
    original = run / f"{prefix}_{kind}.csv"
    header, *body = list(csv.reader(original.open(newline="")))
    return original, header, body, [index for index, cell in enumerate(body[-1]) if _is_number(cell)] if body else []


def test_a_real_run_has_more_than_40_numeric_figures_to_corrupt(real_run: Path) -> None:
    assert sum(len(numeric_columns(real_run, kind)[3]) for kind in NUMBER_FILES) > 40


# The non-finite values by class, each class's spellings taken in turn over the columns (pandas reads "1e999" as inf
# and "NaN" as the text "NaN", as it reads "inf" and "nan"): one test per class and file, so that they spread over the
# test processes. A test per spelling ran the same sweep twice for each class (9.5 of the tests' 20 CPU-s).
NON_FINITE = {"inf": ("inf", "1e999"), "-inf": ("-inf", "-1e999"), "nan": ("nan", "NaN")}


@pytest.mark.parametrize("kind", NUMBER_FILES)
@pytest.mark.parametrize("values", NON_FINITE.values(), ids=NON_FINITE)
def test_a_non_finite_figure_in_any_numeric_column_is_reported_or_refused_never_a_traceback(
    real_run: Path, tmp_path: Path, values: tuple[str, str], kind: str
) -> None:
    """Every numeric column of every CSV the report reads, one at a time: exit 0 or one ``reports:`` line, exit 2.

    One report per column without the charts (the class's spellings in turn, column by column), then one with the
    charts and every column the report took at once, each with its spelling (when it took none, that one is the
    unchanged run, whose charts ``real_report`` draws).
    """
    original, header, body, numeric = numeric_columns(real_run, kind)
    spelling = {column: values[turn % len(values)] for turn, column in enumerate(numeric)}
    accepted: list[int] = []
    for index in [*numeric, None]:
        if index is None and not accepted:
            break
        folder = tmp_path / f"{kind}-{'all' if index is None else index}"
        shutil.copytree(real_run, folder)
        changed = [list(row) for row in body]
        for column in accepted if index is None else [index]:
            changed[-1][column] = spelling[column]
        write_csv(folder / original.name, header, changed)
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            code = report(folder, "--out", str(folder / "out"), *(["--no-charts"] if index is not None else []))
        lines = stderr.getvalue().strip().splitlines()
        named = header[index] if index is not None else [header[column] for column in accepted]
        assert code in (0, 2), (kind, named, code)
        if code == 2:
            assert len(lines) == 1 and lines[0].startswith("reports: "), lines
            assert index is None or header[index] in lines[0], lines
        elif index is not None:
            accepted.append(index)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_max_p95_ok_ms_gates_successful_calls_alone(real_run: Path, tmp_path: Path) -> None:
    latency = {(row["Name"], row["Outcome"]): row for row in rows(next(real_run.glob("*_latency.csv")))}
    ok_p95 = float(latency[("Aggregated", "OK")]["95%"])
    assert report(real_run, "--out", tmp_path / "a", "--max-p95-ok-ms", ok_p95, "--no-charts") == 0
    breached = in_process(real_run, "--out", tmp_path / "b", "--max-p95-ok-ms", ok_p95 - 1, "--no-charts")
    assert breached.returncode == 1
    line = f"gate breached: p95 of successful calls {ok_p95:,.10g} ms > --max-p95-ok-ms {ok_p95 - 1:g}"
    assert line in breached.stderr
    plain = tmp_path / "plain"
    shutil.copytree(real_run, plain)
    next(plain.glob("*_latency.csv")).unlink()
    missing = in_process(plain, "--max-p95-ok-ms", "100")
    assert missing.returncode == 1 and "--max-p95-ok-ms 100: no _latency.csv in this run" in missing.stderr


@pytest.mark.parametrize("status", ["unsettled", "interrupted", "incomplete"])
def test_max_lost_on_an_audit_that_did_not_know_delivery_is_breached(tmp_path: Path, status: str) -> None:
    """Logs not stored yet when the audit gave up, or was cut short, are not a loss figure a gate may pass on."""
    folder = plain_run(tmp_path / "plain", [("/", 100, 0)])
    audit = {"run_id": "r", "acked": 100, "persisted": 40, "lost": 0, "unexpected": 0, "settle_seconds": 1.0,
             "status": status, "detail": "", "in_doubt": 0, "lost_min": 0, "lost_max": 0}  # fmt: skip
    (folder / "plain_audit.json").write_text(json.dumps(audit))
    done = in_process(folder, "--max-lost", "1000")
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr == f"gate breached: --max-lost 1000: the delivery audit status is {status}\n"


def test_max_lost_is_breached_when_the_most_that_may_be_lost_is_unknown(tmp_path: Path) -> None:
    """A killed worker's final counts never arrived: a proven loss of 248 has no upper bound (``lost_max`` null), and
    ``--max-lost 300`` passed on it while the server had dropped 609 logs of the run."""
    folder = plain_run(tmp_path / "plain", [("/", 100, 0)])
    audit = {"run_id": "r", "acked": 5557, "persisted": 5309, "lost": 248, "unexpected": 0, "settle_seconds": 8.0,
             "status": "lost", "detail": "", "in_doubt": 0, "lost_min": 248, "lost_max": None,
             "unreported_workers": ["w1"]}  # fmt: skip
    (folder / "plain_audit.json").write_text(json.dumps(audit))
    done = in_process(folder, "--out", tmp_path / "out", "--max-lost", "300", "--no-charts")
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr == (
        "gate breached: --max-lost 300: the most that may be lost is unknown (lost 248..?): the final counts of 1 "
        "worker(s) never arrived, so acknowledged is only a lower bound\n"
    )
    assert markdown_table((tmp_path / "out" / "report.md").read_text(), "Delivery audit")["lost"]["value"] == "248..?"


def _wrong(value: object) -> object:
    """A value of another JSON type than ``value``."""
    if isinstance(value, str):
        return 5
    if isinstance(value, bool | int | float):
        return ["many"]
    return ["not", "an", "object"] if isinstance(value, dict) else {"not": "a value"}


def test_a_json_field_of_the_wrong_shape_is_one_line_and_exit_2_never_a_traceback(real_run: Path,
                                                                                  tmp_path: Path) -> None:  # fmt: skip
    """Every field of ``_run.json`` and ``_audit.json``, one at a time, for the report and the history."""
    prefix = next(real_run.glob("*_stats.csv")).name[: -len("_stats.csv")]
    tried = 0
    for kind in ("run", "audit"):
        original = json.loads((real_run / f"{prefix}_{kind}.json").read_text())
        for key in (key for key in original if original[key] is not None):
            runs = tmp_path / f"{kind}-{key}"
            folder = runs / "20261130T000000Z-mixed"
            shutil.copytree(real_run, folder)
            (folder / f"{prefix}_{kind}.json").write_text(json.dumps({**original, key: _wrong(original[key])}))
            stderr = io.StringIO()
            with contextlib.redirect_stderr(stderr):
                code = report(folder, "--out", str(folder / "out"), "--max-lost", "0")
                history_code = history_main([str(runs)])
            tried += 1
            lines = stderr.getvalue().strip().splitlines()
            assert code == 2 and history_code == 2, (kind, key, stderr.getvalue())
            assert lines[0].startswith(f"reports: {folder / prefix}_{kind}.json: {key}") and len(lines) == 3, lines
            assert lines[1].startswith("reports history: skipped") and "Traceback" not in stderr.getvalue()
    assert tried >= 15


def test_the_history_of_a_workload_named_with_a_slash_or_an_audit_status_that_is_no_text(
    real_run: Path, tmp_path: Path
) -> None:
    prefix = next(real_run.glob("*_stats.csv")).name[: -len("_stats.csv")]
    runs = tmp_path / "runs"
    for name, kind, key, value in (("20261129T000000Z-mixed", "run", "workload", "team/mixed"),
                                   ("20261130T000000Z-mixed", "audit", "status", 5)):  # fmt: skip
        shutil.copytree(real_run, runs / name)
        path = runs / name / f"{prefix}_{kind}.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), key: value}))
    never_started = runs / "20261130T010000Z-mixed"
    never_started.mkdir()
    (never_started / "locust_stats.csv").write_text("")
    stderr, stdout = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
        code = history_main([str(runs)])
    assert code == 0, stderr.getvalue()
    assert "## team/mixed, pacing at 100 calls/s (1 of 1 runs)" in stdout.getvalue()
    assert (runs / "history_team_mixed_pacing_at_100_calls_s.png").is_file()
    assert stderr.getvalue().splitlines() == [
        f"reports history: skipped {runs}/20261130T000000Z-mixed/{prefix}_audit.json: status: 5 is not of type 'string'"
    ], "the run that never started is skipped silently"


def test_a_replica_no_call_reached_is_warned_about_even_with_two_servers() -> None:
    """pick_first over two replicas: the busy one is exactly twice its fair share, so only the idle one shows it."""
    import pandas as pd

    from reports.peers import spread

    two = spread(pd.DataFrame({"Peer": ["ipv4:127.0.0.1:1", "ipv4:127.0.0.1:2"], "Requests": [1580, 0]}), None)
    assert two is not None and not two.skewed and [peer.peer for peer in two.idle] == ["ipv4:127.0.0.1:2"]
    assert any("ipv4:127.0.0.1:2: no call reached it (1 of 2 servers idle)" in line for line in two.warnings())
    even = spread(pd.DataFrame({"Peer": ["a", "b"], "Requests": [700, 720]}), None)
    one = spread(pd.DataFrame({"Peer": ["a"], "Requests": [700]}), None)
    assert even is not None and one is not None and even.warnings() == [] and one.warnings() == []


def test_calls_per_server_of_a_run_within_one_second_say_why_there_is_no_chart() -> None:
    """900 calls in 0.34 s: every history row has the same second, so there is no calls/s over time to draw."""
    import types

    import pandas as pd

    from reports.document import _peers
    from reports.peers import spread

    peers = pd.DataFrame({"Peer": ["a", "b"], "Requests": [450, 450]})
    history = pd.DataFrame({"Timestamp": [1796105961] * 2, "Peer": ["a", "b"], "Requests": [450, 450]})
    within_a_second = spread(peers, history)
    assert within_a_second is not None and within_a_second.per_second is None
    section = _peers(types.SimpleNamespace(peers=within_a_second))
    assert section is not None and any("No chart of calls/s per server over time" in str(block)
                                       for block in section.blocks)  # fmt: skip
    two_seconds = spread(peers, pd.concat([history.assign(Timestamp=1796105960, Requests=0), history]))
    assert two_seconds is not None and two_seconds.per_second is not None
    section = _peers(types.SimpleNamespace(peers=two_seconds))
    assert section is not None and not any("No chart" in str(block) for block in section.blocks)
