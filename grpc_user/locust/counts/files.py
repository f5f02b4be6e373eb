"""Files the suite writes next to Locust's ``--csv`` files: logs totals, logs history, run parameters.

``<prefix>_logs.csv``          Type,Name,Requests,Logs Sent,Logs Acked,Logs Rejected,Logs In Doubt (+ Aggregated)
``<prefix>_logs_history.csv``  Timestamp,User Count,Type,Name,Logs Sent,Logs Acked (cumulative, every interval)
``<prefix>_run.json``          workload, users, spawn rate, run time, target, run id, start/stop, options
"""

from __future__ import annotations

import csv
import json
import os
import time
from typing import IO, Any

from grpc_user.locust.counts.logs import LogCounter, RpcLogs

LOGS_HEADER = ("Type", "Name", "Requests", "Logs Sent", "Logs Acked", "Logs Rejected", "Logs In Doubt")
HISTORY_HEADER = ("Timestamp", "User Count", "Type", "Name", "Logs Sent", "Logs Acked")
REQUEST_TYPE = "grpc"


def _rows(counter: LogCounter) -> list[tuple[str, str, RpcLogs]]:
    rows = [(REQUEST_TYPE, name, logs) for name, logs in sorted(counter.by_name.items())]
    return rows + [("", "Aggregated", counter.total())]


def write_logs_totals(prefix: str, counter: LogCounter) -> str:
    """Write ``<prefix>_logs.csv`` with one row per request name and an Aggregated row."""
    path = f"{prefix}_logs.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(LOGS_HEADER)
        for kind, name, logs in _rows(counter):
            writer.writerow((kind, name, logs.requests, logs.sent, logs.acked, logs.rejected, logs.in_doubt))
    return path


class LogsHistoryWriter:
    """Appends cumulative log counts to ``<prefix>_logs_history.csv`` once per stats interval."""

    def __init__(self, prefix: str) -> None:
        self.path = f"{prefix}_logs_history.csv"
        self._handle: IO[str] | None = None

    def start(self) -> None:
        """Truncate the file and write its header."""
        self.close()
        self._handle = open(self.path, "w", newline="")
        csv.writer(self._handle).writerow(HISTORY_HEADER)
        self._handle.flush()

    def append(self, counter: LogCounter, user_count: int) -> None:
        """One row per request name and an Aggregated row, stamped now."""
        if self._handle is None:
            return
        now = int(time.time())
        writer = csv.writer(self._handle)
        for kind, name, logs in _rows(counter):
            writer.writerow((now, user_count, kind, name, logs.sent, logs.acked))
        self._handle.flush()

    def close(self) -> None:
        """Close the file (the rows already written stay)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def write_run_info(prefix: str, info: dict[str, Any]) -> str:
    """Write ``<prefix>_run.json`` atomically."""
    path = f"{prefix}_run.json"
    partial = f"{path}.partial"
    with open(partial, "w") as handle:
        json.dump(info, handle, indent=2, sort_keys=True, default=str)
    os.replace(partial, path)
    return path
