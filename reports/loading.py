"""Find a run's CSV prefix and read Locust's files and the suite's sidecars into one validated RunData, each file
checked against its declaration in ``grpc_user.run_files.schema`` (the one its writer writes)."""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from grpc_user.histograms import HistogramError, LatencyHistograms
from grpc_user.run_files import read_histograms
from grpc_user.run_files.schema import (
    ACTIONS,
    AGGREGATED,
    ARRIVALS,
    ARRIVALS_HISTORY,
    AUDIT,
    CAPACITY,
    EXCEPTIONS,
    FAILURES,
    FRESHNESS,
    FRESHNESS_HISTORY,
    FRESHNESS_INFO,
    HISTOGRAMS,
    LATENCY,
    LOGS,
    LOGS_HISTORY,
    PEERS,
    PEERS_HISTORY,
    RUN_INFO,
    SERVICE_TIME,
    STATS,
    STATS_HISTORY,
    CsvFile,
    JsonFile,
)
from reports.schema import shape_problem

logger = logging.getLogger(__name__)


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
    # The visibility latencies of the freshness probe's found samples per name (``_freshness.json``'s histograms).
    visibility: LatencyHistograms | None = None
    peers: pd.DataFrame | None = None
    peers_history: pd.DataFrame | None = None

    def path(self, suffix: str) -> Path:
        """``<prefix><suffix>``, e.g. ``_stats.csv``."""
        return self.prefix.with_name(self.prefix.name + suffix)


def find_prefix(run: Path) -> Path:
    """The CSV prefix of a run folder (its single ``*_stats.csv``) or of a ``--csv`` prefix path."""
    if run.is_dir():
        found = sorted(p for p in run.glob(f"*{STATS.suffix}") if p.is_file())
        if not found:
            raise ReportError(f"{run}: no *{STATS.suffix} in this folder (not a Locust --csv run folder)")
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            raise ReportError(f"{run}: several Locust runs in this folder ({names}); pass the --csv prefix")
        return run / found[0].name[: -len(STATS.suffix)]
    stats = Path(STATS.path(run))
    if stats.is_file():
        return run
    if not run.parent.is_dir():
        raise ReportError(f"{run}: no such run folder ({run.parent} does not exist either)")
    if run.exists():
        raise ReportError(f"{run}: not a run folder nor a --csv prefix")
    raise ReportError(f"{run}: no such run folder, and no {stats.name} for it as a --csv prefix")


def _read_csv(path: Path, file: CsvFile) -> pd.DataFrame:
    """Read one CSV, check it has ``file``'s required columns and numbers; every problem becomes a ReportError
    naming the file."""
    kind = file.kind
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
    missing = [c for c in file.required if c not in frame.columns]
    if missing:
        raise ReportError(f"{path}: not a Locust {kind} CSV, missing column(s) {', '.join(missing)}")
    if "Name" in frame.columns:
        frame["Name"] = frame["Name"].fillna("").astype(str)
    for column in (column for column in file.numbers if column in frame.columns):
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna()
        if bad.any():
            line = int(bad.to_numpy().nonzero()[0][0]) + 2
            raise ReportError(f"{path}: line {line}: '{column}' is not a number (truncated or foreign CSV?)")
        frame[column] = values
    for column in (column for column in frame.columns if column not in file.text):
        values = pd.to_numeric(frame[column], errors="coerce")
        infinite = values.abs() == float("inf")
        if infinite.any():
            line = int(infinite.to_numpy().nonzero()[0][0]) + 2
            raise ReportError(f"{path}: line {line}: '{column}' is {frame[column].iloc[line - 2]!r}, not a finite "
                              "number")  # fmt: skip
    for column in (column for column in file.loose_numbers if column in frame.columns):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def _optional_csv(prefix: Path, file: CsvFile) -> pd.DataFrame | None:
    path = Path(file.path(prefix))
    if not path.is_file():
        logger.debug("no %s", path)
        return None
    if path.stat().st_size == 0:
        raise ReportError(f"{path}: empty file, not a Locust {file.kind} CSV")
    frame = _read_csv(path, file)
    return None if frame.empty else frame


def _optional_json(prefix: Path, file: JsonFile) -> dict[str, Any] | None:
    """The JSON object of ``file`` (None when absent), every field a report reads of the shape it declares."""
    path = Path(file.path(prefix))
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
    if problem := shape_problem(value, file.shape):
        raise ReportError(f"{path}: {problem}")
    return value


def _no_constant(name: str) -> Any:
    """JSON's NaN and Infinity are no figures a report can use."""
    raise ValueError(f"{name} is not a finite number")


def _audit(prefix: Path, run_info: dict[str, Any] | None) -> dict[str, Any] | None:
    audit = _optional_json(prefix, AUDIT)
    if audit is None and run_info:
        audit = run_info.get("audit")
    return audit


def _histograms(prefix: Path) -> dict[str, LatencyHistograms] | None:
    """The suite's HDR histograms (``<prefix>_histograms.json``) when the run has them."""
    path = Path(HISTOGRAMS.path(prefix))
    if not path.is_file():
        return None
    try:
        return read_histograms(path)
    except HistogramError as error:
        raise ReportError(f"{path}: {error}") from None
    except OSError as error:
        raise ReportError(f"{path}: cannot read ({error.strerror or error})") from None


def _visibility(prefix: Path, freshness_info: dict[str, Any] | None) -> LatencyHistograms | None:
    """The HDR histograms of visibility latency in ``_freshness.json`` (None without them)."""
    if not freshness_info or not freshness_info.get("histograms"):
        return None
    try:
        return LatencyHistograms.decode(freshness_info["histograms"])
    except HistogramError as error:
        raise ReportError(f"{FRESHNESS_INFO.path(prefix)}: histograms: {error}") from None


def load_run(run: Path) -> RunData:
    """Read a run folder or ``--csv`` prefix: Locust's ``_stats.csv`` is required, the rest optional."""
    prefix = find_prefix(run)
    stats_path = Path(STATS.path(prefix))
    stats = _read_csv(stats_path, STATS)
    if stats.empty:
        raise ReportError(f"{stats_path}: no rows (header only): the run recorded nothing")
    aggregated = stats[stats["Name"] == AGGREGATED]
    if aggregated.empty:
        raise ReportError(f"{stats_path}: no {AGGREGATED} row (truncated?)")
    if int(aggregated["Request Count"].iloc[-1]) == 0:
        raise ReportError(f"{stats_path}: the run recorded 0 requests, nothing to report")
    run_info = _optional_json(prefix, RUN_INFO)
    freshness_info = _optional_json(prefix, FRESHNESS_INFO)
    return RunData(
        prefix=prefix,
        stats=stats,
        history=_optional_csv(prefix, STATS_HISTORY),
        failures=_optional_csv(prefix, FAILURES),
        exceptions=_optional_csv(prefix, EXCEPTIONS),
        logs=_optional_csv(prefix, LOGS),
        logs_history=_optional_csv(prefix, LOGS_HISTORY),
        latency=_optional_csv(prefix, LATENCY),
        service_time=_optional_csv(prefix, SERVICE_TIME),
        capacity=_optional_json(prefix, CAPACITY),
        audit=_audit(prefix, run_info),
        run_info=run_info,
        actions=_optional_csv(prefix, ACTIONS),
        histograms=_histograms(prefix),
        arrivals=_optional_csv(prefix, ARRIVALS),
        arrivals_history=_optional_csv(prefix, ARRIVALS_HISTORY),
        freshness=_optional_csv(prefix, FRESHNESS),
        freshness_history=_optional_csv(prefix, FRESHNESS_HISTORY),
        freshness_info=freshness_info,
        visibility=_visibility(prefix, freshness_info),
        peers=_optional_csv(prefix, PEERS),
        peers_history=_optional_csv(prefix, PEERS_HISTORY),
    )
