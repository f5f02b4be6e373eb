"""Find a run's CSV prefix and read Locust's files and the suite's sidecars into one validated RunData."""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from grpc_user.histograms import HISTOGRAMS_FILE_SUFFIX, HistogramError, LatencyHistograms, read_histograms_file
from reports.schema import AUDIT, CAPACITY, FRESHNESS, RUN_INFO, shape_problem

logger = logging.getLogger(__name__)

STATS_SUFFIX = "_stats.csv"
PERCENTILES = ("50%", "90%", "95%", "99%")

STATS_COLUMNS = (
    "Type",
    "Name",
    "Request Count",
    "Failure Count",
    "Requests/s",
    "Max Response Time",
    "Average Content Size",
    "Average Response Time",
    *PERCENTILES,
    "100%",
)
HISTORY_COLUMNS = (
    "Timestamp",
    "User Count",
    "Name",
    "Total Request Count",
    "Total Failure Count",
    "50%",
    "95%",
    "99%",
)
FAILURES_COLUMNS = ("Name", "Error", "Occurrences")
EXCEPTIONS_COLUMNS = ("Count", "Message")
LOGS_COLUMNS = ("Name", "Requests", "Logs Sent", "Logs Acked", "Logs Rejected")
LOGS_HISTORY_COLUMNS = ("Timestamp", "User Count", "Name", "Logs Sent", "Logs Acked")
LATENCY_COLUMNS = ("Name", "Outcome", "Count", "Average (ms)", *PERCENTILES, "Max (ms)")
ARRIVALS_COLUMNS = ("Offered", "Made", "Dropped")
ARRIVALS_HISTORY_COLUMNS = ("Timestamp", "User Count", "Offered", "Made", "Dropped")
FRESHNESS_COLUMNS = ("Name", "Samples", "Visible", "Never Visible", "50%", "95%", "99%", "Max (ms)",
                     "Poll Interval (ms)")  # fmt: skip
FRESHNESS_HISTORY_COLUMNS = ("Timestamp", "Name", "Visible", "50%", "95%", "99%", "Max (ms)")
PEERS_COLUMNS = ("Peer", "Requests")
PEERS_HISTORY_COLUMNS = ("Timestamp", "Peer", "Requests")
ACTIONS_COLUMNS = ("Phase", "At (s)", "Command", "Status", "Exit Code", "Started (unix s)", "Duration (s)")

# Columns that must hold numbers on every row where present; the percentiles of history rows may be 'N/A'.
STRICT_NUMBERS = {
    "stats": ("Request Count", "Failure Count", "Requests/s"),
    "stats history": ("Timestamp", "User Count", "Total Request Count", "Total Failure Count"),
    "failures": ("Occurrences",),
    "exceptions": ("Count",),
    "logs": ("Requests", "Logs Sent", "Logs Acked", "Logs Rejected", "Logs In Doubt"),
    "logs history": ("Timestamp", "User Count", "Logs Sent", "Logs Acked"),
    "latency": ("Count", "Average (ms)", *PERCENTILES, "Max (ms)"),
    "actions": ("Phase", "At (s)"),
    "arrivals": ARRIVALS_COLUMNS,
    "arrivals history": ARRIVALS_HISTORY_COLUMNS,
    "freshness": FRESHNESS_COLUMNS[1:],
    "freshness history": FRESHNESS_HISTORY_COLUMNS[:1] + FRESHNESS_HISTORY_COLUMNS[2:],
    "peers": ("Requests",),
    "peers history": ("Timestamp", "Requests"),
}
# Every other column is a number too (checked finite; an empty or N/A cell is allowed), but these.
TEXT_COLUMNS = frozenset({"Type", "Name", "Method", "Error", "Message", "Traceback", "Nodes", "Outcome", "Command",
                          "Status", "Output", "Detail", "Peer"})  # fmt: skip
# Locust writes 'N/A' percentiles for a name without requests and for the first history row.
LOOSE_NUMBERS = {
    "stats": ("Max Response Time", "Average Content Size", "Average Response Time", *PERCENTILES, "100%"),
    "stats history": ("50%", "95%", "99%"),
}


class ReportError(Exception):
    """Input that cannot be reported: the message names the file or value and what is wrong."""


@dataclass
class RunData:
    """Everything one run left behind; sidecars and history are None when absent."""

    prefix: Path
    stats: pd.DataFrame
    history: pd.DataFrame | None
    failures: pd.DataFrame | None
    exceptions: pd.DataFrame | None
    logs: pd.DataFrame | None
    logs_history: pd.DataFrame | None
    latency: pd.DataFrame | None
    service_time: pd.DataFrame | None
    capacity: dict[str, Any] | None
    audit: dict[str, Any] | None
    run_info: dict[str, Any] | None
    actions: pd.DataFrame | None = None
    histograms: dict[str, LatencyHistograms] | None = None
    arrivals: pd.DataFrame | None = None
    arrivals_history: pd.DataFrame | None = None
    freshness: pd.DataFrame | None = None
    freshness_history: pd.DataFrame | None = None
    freshness_info: dict[str, Any] | None = None
    peers: pd.DataFrame | None = None
    peers_history: pd.DataFrame | None = None

    def path(self, suffix: str) -> Path:
        """``<prefix><suffix>``, e.g. ``_stats.csv``."""
        return self.prefix.with_name(self.prefix.name + suffix)


def find_prefix(run: Path) -> Path:
    """The CSV prefix of a run folder (its single ``*_stats.csv``) or of a ``--csv`` prefix path."""
    if run.is_dir():
        found = sorted(p for p in run.glob(f"*{STATS_SUFFIX}") if p.is_file())
        if not found:
            raise ReportError(f"{run}: no *{STATS_SUFFIX} in this folder (not a Locust --csv run folder)")
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            raise ReportError(f"{run}: several Locust runs in this folder ({names}); pass the --csv prefix")
        return run / found[0].name[: -len(STATS_SUFFIX)]
    stats = run.with_name(run.name + STATS_SUFFIX)
    if stats.is_file():
        return run
    if not run.parent.is_dir():
        raise ReportError(f"{run}: no such run folder ({run.parent} does not exist either)")
    if run.exists():
        raise ReportError(f"{run}: not a run folder nor a --csv prefix")
    raise ReportError(f"{run}: no such run folder, and no {stats.name} for it as a --csv prefix")


def _read_csv(path: Path, kind: str, columns: tuple[str, ...]) -> pd.DataFrame:
    """Read one CSV, check its columns and numbers; every problem becomes a ReportError naming the file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = pd.read_csv(
                path,
                encoding_errors="replace",
                skipinitialspace=True,
                keep_default_na=False,
                na_values=["N/A", ""],
            )
    except pd.errors.EmptyDataError:
        raise ReportError(f"{path}: empty file, not a Locust {kind} CSV") from None
    except (pd.errors.ParserError, ValueError, UnicodeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ReportError(f"{path}: unreadable {kind} CSV ({first})") from None
    except OSError as error:
        raise ReportError(f"{path}: cannot read ({error.strerror or error})") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ReportError(f"{path}: not a Locust {kind} CSV, missing column(s) {', '.join(missing)}")
    if "Name" in frame.columns:
        frame["Name"] = frame["Name"].fillna("").astype(str)
    for column in (column for column in STRICT_NUMBERS.get(kind, ()) if column in frame.columns):
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna()
        if bad.any():
            line = int(bad.to_numpy().nonzero()[0][0]) + 2
            raise ReportError(f"{path}: line {line}: '{column}' is not a number (truncated or foreign CSV?)")
        frame[column] = values
    for column in (column for column in frame.columns if column not in TEXT_COLUMNS):
        values = pd.to_numeric(frame[column], errors="coerce")
        infinite = values.abs() == float("inf")
        if infinite.any():
            line = int(infinite.to_numpy().nonzero()[0][0]) + 2
            raise ReportError(f"{path}: line {line}: '{column}' is {frame[column].iloc[line - 2]!r}, not a finite "
                              "number")  # fmt: skip
    for column in LOOSE_NUMBERS.get(kind, ()):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def _optional_csv(data_prefix: Path, suffix: str, kind: str, columns: tuple[str, ...]) -> pd.DataFrame | None:
    path = data_prefix.with_name(data_prefix.name + suffix)
    if not path.is_file():
        logger.debug("no %s", path)
        return None
    if path.stat().st_size == 0:
        raise ReportError(f"{path}: empty file, not a Locust {kind} CSV")
    frame = _read_csv(path, kind, columns)
    return None if frame.empty else frame


def _optional_json(path: Path, schema: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON object in ``path`` (None when absent), every field a report reads of the shape ``schema`` says."""
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8", errors="replace"), parse_constant=_no_constant)
    except (json.JSONDecodeError, OSError) as error:
        raise ReportError(f"{path}: not valid JSON ({error})") from None
    except ValueError as error:
        raise ReportError(f"{path}: {error}") from None
    if not isinstance(value, dict):
        raise ReportError(f"{path}: expected a JSON object")
    if problem := shape_problem(value, schema):
        raise ReportError(f"{path}: {problem}")
    return value


def _no_constant(name: str) -> Any:
    """JSON's NaN and Infinity are no figures a report can use."""
    raise ValueError(f"{name} is not a finite number")


def _capacity(path: Path) -> dict[str, Any] | None:
    """A capacity search's ``capacity.json`` beside the run's files, when there is one."""
    return _optional_json(path, CAPACITY)


def _audit(prefix: Path, run_info: dict[str, Any] | None) -> dict[str, Any] | None:
    path = prefix.with_name(prefix.name + "_audit.json")
    audit = _optional_json(path, AUDIT)
    if audit is None and run_info:
        audit = run_info.get("audit")
    return audit


def _histograms(prefix: Path) -> dict[str, LatencyHistograms] | None:
    """The suite's HDR histograms (``<prefix>_histograms.json``) when the run has them."""
    path = prefix.with_name(prefix.name + HISTOGRAMS_FILE_SUFFIX)
    if not path.is_file():
        return None
    try:
        return read_histograms_file(str(path))
    except HistogramError as error:
        raise ReportError(f"{path}: {error}") from None
    except OSError as error:
        raise ReportError(f"{path}: cannot read ({error.strerror or error})") from None


def load_run(run: Path) -> RunData:
    """Read a run folder or ``--csv`` prefix: Locust's ``_stats.csv`` is required, the rest optional."""
    prefix = find_prefix(run)
    stats_path = prefix.with_name(prefix.name + STATS_SUFFIX)
    stats = _read_csv(stats_path, "stats", STATS_COLUMNS)
    if stats.empty:
        raise ReportError(f"{stats_path}: no rows (header only): the run recorded nothing")
    aggregated = stats[stats["Name"] == "Aggregated"]
    if aggregated.empty:
        raise ReportError(f"{stats_path}: no Aggregated row (truncated?)")
    if int(aggregated["Request Count"].iloc[-1]) == 0:
        raise ReportError(f"{stats_path}: the run recorded 0 requests, nothing to report")
    run_info = _optional_json(prefix.with_name(prefix.name + "_run.json"), RUN_INFO)
    return RunData(
        prefix=prefix,
        stats=stats,
        history=_optional_csv(prefix, "_stats_history.csv", "stats history", HISTORY_COLUMNS),
        failures=_optional_csv(prefix, "_failures.csv", "failures", FAILURES_COLUMNS),
        exceptions=_optional_csv(prefix, "_exceptions.csv", "exceptions", EXCEPTIONS_COLUMNS),
        logs=_optional_csv(prefix, "_logs.csv", "logs", LOGS_COLUMNS),
        logs_history=_optional_csv(prefix, "_logs_history.csv", "logs history", LOGS_HISTORY_COLUMNS),
        latency=_optional_csv(prefix, "_latency.csv", "latency", LATENCY_COLUMNS),
        service_time=_optional_csv(prefix, "_service_time.csv", "latency", LATENCY_COLUMNS),
        capacity=_capacity(prefix.parent / "capacity.json"),
        audit=_audit(prefix, run_info),
        run_info=run_info,
        actions=_optional_csv(prefix, "_actions.csv", "actions", ACTIONS_COLUMNS),
        histograms=_histograms(prefix),
        arrivals=_optional_csv(prefix, "_arrivals.csv", "arrivals", ARRIVALS_COLUMNS),
        arrivals_history=_optional_csv(prefix, "_arrivals_history.csv", "arrivals history", ARRIVALS_HISTORY_COLUMNS),
        freshness=_optional_csv(prefix, "_freshness.csv", "freshness", FRESHNESS_COLUMNS),
        freshness_history=_optional_csv(
            prefix, "_freshness_history.csv", "freshness history", FRESHNESS_HISTORY_COLUMNS
        ),  # fmt: skip
        freshness_info=_optional_json(prefix.with_name(prefix.name + "_freshness.json"), FRESHNESS),
        peers=_optional_csv(prefix, "_peers.csv", "peers", PEERS_COLUMNS),
        peers_history=_optional_csv(prefix, "_peers_history.csv", "peers history", PEERS_HISTORY_COLUMNS),
    )
