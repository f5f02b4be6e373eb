"""The run files: each written through ``grpc_user.run_files`` and read back through the reports' loader, one schema
for both sides; the module stays free of Locust, and reports import nothing of the Locust plugin."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from locust_runs import ROOT

from grpc_user.histograms import LatencyHistograms
from grpc_user.results import OK
from grpc_user.run_files import (
    ArrivalsHistory,
    CountsHistory,
    FreshnessHistory,
    read_histograms,
    write_actions,
    write_arrivals,
    write_audit,
    write_capacity,
    write_freshness,
    write_freshness_info,
    write_histograms,
    write_latency,
    write_logs,
    write_peers,
    write_run_info,
)
from grpc_user.run_files.schema import (
    AGGREGATED,
    CSV_FILES,
    JSON_FILES,
    REQUEST_TYPE,
    SERVICE_TIME,
    STATS,
    CsvFile,
)
from reports.loading import ReportError, RunData, load_run
from reports.schema import shape_problem


@dataclass
class Logs:
    """The figures the plugin's log counter hands over for one name."""

    requests: int
    sent: int
    acked: int
    in_doubt: int

    @property
    def rejected(self) -> int:
        return self.sent - self.acked - self.in_doubt


@dataclass
class Action:
    """The figures of one ``--action`` outcome."""

    phase: int
    at: float
    command: str
    status: str
    exit_code: int | None
    started_at: float | None
    ended_at: float | None
    output_lines: int = 0
    output: list[str] = field(default_factory=list)
    detail: str = ""
    output_bytes: int = 0

    @property
    def duration(self) -> float | None:
        return None if self.started_at is None or self.ended_at is None else self.ended_at - self.started_at


BY_NAME = {"WriteLog": Logs(10, 10, 9, 1), "BatchWriteLog": Logs(5, 500, 450, 0)}
TOTAL = Logs(15, 510, 459, 1)
CAUSES = {"USERS_BUSY": 7, "USERS_NOT_READY": 0, "GENERATOR_BEHIND": 2}
FRESHNESS_ROW = {"samples": 4, "visible": 3, "never_visible": 1, "unknown": 0, "p50": 12.5, "p95": 40.0, "p99": 41.0,
                 "max": 41.2, "max_poll_gap_ms": 130.5}  # fmt: skip
FRESHNESS_FIGURES = {
    "status": "done",
    "sample_rate": 20.0,
    "poll_interval_ms": 100.0,
    "max_poll_gap_ms": 130.5,
    "samples": 4,
    "visible": 3,
    "pending": 0,
    "never_visible": 1,
    "never_visible_samples": [{"name": "WriteLog", "probe": "r.w0", "sample": 3, "acked_at": "2026-11-30T04:00:00Z"}],
    "by_name": {"WriteLog": FRESHNESS_ROW},
    "aggregated": FRESHNESS_ROW,
    "probe_queries": 31,
    "probe_query_failures": 0,
    "error": "",
    "histograms": [],
}
AUDIT_RESULT = {"run_id": "r-1", "acked": 459, "persisted": 459, "lost": 0, "unexpected": 0, "status": "ok",
                "detail": "", "in_doubt": 1, "lost_min": 0, "lost_max": 0, "settle_seconds": 6.0}  # fmt: skip
PHASES = [{"phase": 0, "action": None, "acked": 200, "in_doubt": 0, "persisted": 200, "lost": 0, "lost_min": 0,
           "lost_max": 0, "status": "ok", "sentence": "all 200 stored"}]  # fmt: skip
STEP = {"offered_rps": 100.0, "achieved_rps": 99.5, "offered_logs_per_second": 100.0, "acked_logs_per_second": 99.5,
        "stored_logs_per_second": 99.0, "p50_ms": 1.0, "p95_ms": 2.0, "p99_ms": 3.0, "failures": {}, "dropped": 0,
        "backlog_start": 0, "backlog_end": 3, "good": True, "broken_by": []}  # fmt: skip
CAUSE = {"status": "LATENCY_P95", "words": "p95 60 ms > 50 ms"}
CAPACITY_RESULT = {"answer": "Capacity of grpc://x: 100 logs/s sustained", "max_sustainable_rps": 100.0,
                   "max_sustainable_logs_per_second": 100.0, "breaking_cause": CAUSE,
                   "slo": {"p95_ms": 50.0, "failure_rate": 0.01, "visibility_p95_ms": 0.0}, "steps": [STEP],
                   "batch_sizes": []}  # fmt: skip
RUN_INFO = {"workload": "mixed", "locustfile": "locustfiles/mixed.py", "users": 5, "spawn_rate": 5.0, "run_time": 3,
            "target": "grpc://127.0.0.1:1", "run_id": "r-1", "started_at": "2026-11-30T04:00:00Z",
            "stopped_at": "2026-11-30T04:00:03Z", "duration_seconds": 3.0, "workers": 0,
            "options": {"capacity": None, "arrival_rate": "100", "target_rps": None}}  # fmt: skip


def latency_histograms(*values: tuple[str, str, int]) -> LatencyHistograms:
    histograms = LatencyHistograms()
    for name, outcome, micros in values:
        histograms.record(name, outcome, micros)
    return histograms


def header(path: str) -> list[str]:
    with open(path, newline="") as handle:
        return next(csv.reader(handle))


def locust_stats(prefix: Path, requests: int = 15) -> None:
    """The one file a run folder needs: Locust's ``_stats.csv`` (the columns the reports read of it)."""
    with open(STATS.path(prefix), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(STATS.columns)
        for kind, name in ((REQUEST_TYPE, "WriteLog"), ("", AGGREGATED)):
            writer.writerow((kind, name, requests, 0, 5.0, 9, 100, 2.0, 1, 2, 3, 4, 9))


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunData, dict[str, str]]:
    """Every run file written through ``grpc_user.run_files``, then the folder read by ``reports``' loader; the paths
    the writers returned, by kind."""
    prefix = tmp_path_factory.mktemp("run") / "mixed"
    locust_stats(prefix)
    latency = latency_histograms(("WriteLog", OK, 1_500), ("WriteLog", OK, 2_250), ("WriteLog", "UNAVAILABLE", 317))
    service_time = latency_histograms(("WriteLog", OK, 900))
    counts, arrivals = CountsHistory(str(prefix)), ArrivalsHistory(str(prefix))
    counts.append(5, BY_NAME, TOTAL, {"127.0.0.1:50051": 10, "127.0.0.1:50052": 5})
    counts.append(5, BY_NAME, TOTAL, {"127.0.0.1:50051": 10, "127.0.0.1:50052": 5})  # unchanged: no peer rows
    arrivals.append(5, 30, 9)
    freshness = FreshnessHistory(str(prefix))
    freshness.append(int(time.time()), {"WriteLog": FRESHNESS_ROW})
    for history in (counts, arrivals, freshness):
        history.close()
    paths = {
        "logs history": counts.path,
        "peers history": counts.peers_path,
        "arrivals history": arrivals.path,
        "freshness history": freshness.path,
        "logs": write_logs(str(prefix), BY_NAME, TOTAL),
        "latency": write_latency(str(prefix), latency),
        "service time": write_latency(str(prefix), service_time, SERVICE_TIME),
        "peers": write_peers(str(prefix), {"127.0.0.1:50051": 10, "127.0.0.1:50052": 5}, ["127.0.0.1:50053"]),
        "arrivals": write_arrivals(str(prefix), 30, CAUSES),
        "freshness": write_freshness(str(prefix), FRESHNESS_FIGURES),
        "actions": write_actions(str(prefix), [Action(1, 2.0, "echo hi", "ok", 0, 1000.0, 1000.25, 1, ["hi"], "", 3),
                                               Action(2, 9.0, "sleep 60", "not_started", None, None, None)]),
        "histograms": write_histograms(str(prefix), {"latency": latency, "service_time": service_time}),
        "audit": write_audit(str(prefix), AUDIT_RESULT, PHASES),
        "run": write_run_info(str(prefix), {**RUN_INFO, "audit": AUDIT_RESULT}),
        "capacity": write_capacity(str(prefix), CAPACITY_RESULT),
        "freshness info": write_freshness_info(str(prefix), FRESHNESS_FIGURES),
    }  # fmt: skip
    return load_run(prefix.parent), paths


def test_every_file_the_suite_writes_is_written_here_where_its_schema_says(written) -> None:
    data, paths = written
    declared = {file.kind: file.path(data.prefix) for file in (*CSV_FILES, *JSON_FILES)}
    assert paths == declared
    assert Path(paths["capacity"]) == data.prefix.parent / "capacity.json"


def test_each_csv_file_has_its_declared_columns_in_order(written) -> None:
    _, paths = written
    for file in CSV_FILES:
        causes = [f"Dropped {cause}" for cause in CAUSES] if file.kind == "arrivals" else []
        assert header(paths[file.kind]) == [*file.columns, *causes], file.kind


def test_logs_and_their_history_read_back_as_written(written) -> None:
    data, _ = written
    logs = data.logs.set_index("Name")
    assert list(logs.index) == ["BatchWriteLog", "WriteLog", AGGREGATED]
    assert list(logs["Type"].fillna("")) == [REQUEST_TYPE, REQUEST_TYPE, ""]
    for name, figures in [*BY_NAME.items(), (AGGREGATED, TOTAL)]:
        row = logs.loc[name]
        assert (row["Requests"], row["Logs Sent"], row["Logs Acked"], row["Logs Rejected"], row["Logs In Doubt"]) == (
            figures.requests, figures.sent, figures.acked, figures.rejected, figures.in_doubt)  # fmt: skip
    history = data.logs_history
    assert len(history) == 6 and set(history["User Count"]) == {5}
    assert list(history[history["Name"] == AGGREGATED]["Logs Acked"]) == [TOTAL.acked, TOTAL.acked]
    assert abs(int(history["Timestamp"].iloc[-1]) - time.time()) < 600


def test_latency_by_outcome_and_the_histograms_read_back_to_the_microsecond(written) -> None:
    data, _ = written
    rows = {(row["Name"], row["Outcome"]): row for _, row in data.latency.iterrows()}
    assert set(rows) == {("WriteLog", OK), ("WriteLog", "UNAVAILABLE"), (AGGREGATED, OK), (AGGREGATED, "UNAVAILABLE")}
    ok = rows[("WriteLog", OK)]
    assert (ok["Count"], ok["Max (ms)"], ok["Min (ms)"]) == (2, 2.25, 1.5)
    assert rows[("WriteLog", "UNAVAILABLE")]["50%"] == 0.317
    assert list(data.service_time["Count"]) == [1, 1] and list(data.service_time["Max (ms)"]) == [0.9, 0.9]
    assert set(data.histograms) == {"latency", "service_time"}
    combined = data.histograms["latency"].combined(name="WriteLog", outcome=OK)
    assert (combined.count, combined.min_us, combined.max_us) == (2, 1_500, 2_250)
    assert read_histograms(data.path("_histograms.json"))["service_time"].combined().max_us == 900


def test_arrivals_peers_freshness_and_actions_read_back_as_written(written) -> None:
    data, _ = written
    arrivals = data.arrivals.iloc[0]
    assert (arrivals["Offered"], arrivals["Made"], arrivals["Dropped"]) == (39, 30, 9)
    assert {cause: arrivals[f"Dropped {cause}"] for cause in CAUSES} == CAUSES
    assert data.arrivals_history[["User Count", "Offered", "Made", "Dropped"]].values.tolist() == [[5, 39, 30, 9]]
    peers = dict(zip(data.peers["Peer"], data.peers["Requests"], strict=True))
    assert list(peers.items()) == [("127.0.0.1:50051", 10), ("127.0.0.1:50052", 5), ("127.0.0.1:50053", 0)]
    assert data.peers_history[["Peer", "Requests"]].values.tolist()[-2:] == [["127.0.0.1:50051", 10],
                                                                             ["127.0.0.1:50052", 5]]  # fmt: skip
    freshness = data.freshness.set_index("Name")
    assert list(freshness.index) == ["WriteLog", AGGREGATED]
    assert freshness.loc[AGGREGATED, "95%"] == 40.0 and freshness.loc["WriteLog", "Poll Interval (ms)"] == 100.0
    assert freshness.loc[AGGREGATED, "Largest Poll Gap (ms)"] == 130.5 and freshness.loc[AGGREGATED, "Unknown"] == 0
    assert data.freshness_history[["Name", "Visible", "Max (ms)"]].values.tolist() == [["WriteLog", 3, 41.2]]
    assert data.freshness_info["never_visible_samples"] == FRESHNESS_FIGURES["never_visible_samples"]
    actions = data.actions
    expected = [[1, "echo hi", "ok"], [2, "sleep 60", "not_started"]]
    assert actions[["Phase", "Command", "Status"]].values.tolist() == expected
    assert actions["Duration (s)"].iloc[0] == 0.25 and actions["Output"].iloc[0] == "hi"


def test_the_json_files_read_back_as_written_and_of_their_declared_shape(written) -> None:
    data, paths = written
    assert data.audit == {**AUDIT_RESULT, "phases": PHASES}
    assert data.run_info == {**RUN_INFO, "audit": AUDIT_RESULT}
    assert data.capacity == CAPACITY_RESULT
    for file in JSON_FILES:
        document = json.loads(Path(file.path(data.prefix)).read_text())
        assert shape_problem(document, file.shape) == "", file.kind
    assert not list(data.prefix.parent.glob("*.partial"))


def test_a_file_without_a_column_its_schema_requires_is_refused_naming_the_column(tmp_path: Path) -> None:
    prefix = tmp_path / "run"
    locust_stats(prefix)
    write_logs(str(prefix), BY_NAME, TOTAL)
    logs = Path(f"{prefix}_logs.csv")
    logs.write_text(logs.read_text().replace("Logs Acked", "Acked"))
    with pytest.raises(ReportError, match="missing column\\(s\\) Logs Acked"):
        load_run(tmp_path)


def test_declared_columns_are_consistent() -> None:
    for file in CSV_FILES:
        assert isinstance(file, CsvFile)
        assert set(file.required) <= set(file.columns), file.kind
        assert set(file.numbers) <= set(file.columns) and not set(file.numbers) & file.text, file.kind


@pytest.mark.slow
def test_the_run_files_load_no_locust_and_the_reports_nothing_of_the_plugin() -> None:
    code = (
        "import sys, grpc_user.run_files, reports.cli, reports.history; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('locust', 'gevent') "
        "or m.startswith('grpc_user.locust')))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
