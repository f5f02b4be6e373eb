"""Files the suite writes next to Locust's ``--csv`` files: logs totals, logs history, run parameters.

``<prefix>_logs.csv``          Type,Name,Requests,Logs Sent,Logs Acked,Logs Rejected,Logs In Doubt (+ Aggregated)
``<prefix>_logs_history.csv``  Timestamp,User Count,Type,Name,Logs Sent,Logs Acked (cumulative, every interval)
``<prefix>_run.json``          workload, users, spawn rate, run time, target, run id, start/stop, options
``<prefix>_peers.csv``         Peer,Requests: calls per server address (those the target lists and none reached: 0)
``<prefix>_peers_history.csv`` Timestamp,Peer,Requests (cumulative, every interval)
"""

from __future__ import annotations

import csv
import json
import os
import time
from typing import IO, Any

from grpc_user.locust.counts.logs import LogCounter, RpcLogs
from grpc_user.locust.counts.peers import PeerCounter

LOGS_HEADER = ("Type", "Name", "Requests", "Logs Sent", "Logs Acked", "Logs Rejected", "Logs In Doubt")
HISTORY_HEADER = ("Timestamp", "User Count", "Type", "Name", "Logs Sent", "Logs Acked")
PEERS_HEADER = ("Peer", "Requests")
PEERS_HISTORY_HEADER = ("Timestamp", "Peer", "Requests")
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


def write_peers(prefix: str, peers: PeerCounter, listed: tuple[str, ...] = ()) -> str:
    """Write ``<prefix>_peers.csv``: calls per peer, most first; ``listed`` peers (the target's addresses) that no
    call reached get a row of 0."""
    path = f"{prefix}_peers.csv"
    counts = {peer: 0 for peer in listed} | peers.by_peer
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(PEERS_HEADER)
        writer.writerows(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
    return path


class LogsHistoryWriter:
    """Appends cumulative log counts to ``<prefix>_logs_history.csv``, and calls per peer to
    ``<prefix>_peers_history.csv``, once per stats interval."""

    def __init__(self, prefix: str) -> None:
        self.path = f"{prefix}_logs_history.csv"
        self.peers_path = f"{prefix}_peers_history.csv"
        self._handle: IO[str] | None = None
        self._peers_handle: IO[str] | None = None
        self._peers_written: dict[str, int] = {}
        self._started = 0

    def start(self) -> None:
        """Truncate the files and write their headers."""
        self.close()
        self._handle = open(self.path, "w", newline="")
        csv.writer(self._handle).writerow(HISTORY_HEADER)
        self._handle.flush()
        self._peers_handle, self._peers_written = open(self.peers_path, "w", newline=""), {}
        self._started = int(time.time())
        csv.writer(self._peers_handle).writerow(PEERS_HISTORY_HEADER)
        self._peers_handle.flush()

    def append(self, counter: LogCounter, user_count: int, peers: PeerCounter | None = None) -> None:
        """One row per request name and an Aggregated row, stamped now; one row per peer when the peers' counts
        changed (they are read every few seconds, not every interval)."""
        if self._handle is None:
            return
        now = int(time.time())
        writer = csv.writer(self._handle)
        for kind, name, logs in _rows(counter):
            writer.writerow((now, user_count, kind, name, logs.sent, logs.acked))
        self._handle.flush()
        if peers is not None and self._peers_handle is not None and peers.by_peer != self._peers_written:
            rows = [(now, peer, calls) for peer, calls in sorted(peers.by_peer.items())]
            if not self._peers_written and now > self._started:  # where each peer's count started from
                rows = [(self._started, peer, 0) for peer in sorted(peers.by_peer)] + rows
            self._peers_written = dict(peers.by_peer)
            csv.writer(self._peers_handle).writerows(rows)
            self._peers_handle.flush()

    def close(self) -> None:
        """Close the files (the rows already written stay)."""
        for handle in (self._handle, self._peers_handle):
            if handle is not None:
                handle.close()
        self._handle = self._peers_handle = None


def write_run_info(prefix: str, info: dict[str, Any]) -> str:
    """Write ``<prefix>_run.json`` atomically."""
    path = f"{prefix}_run.json"
    partial = f"{path}.partial"
    with open(partial, "w") as handle:
        json.dump(info, handle, indent=2, sort_keys=True, default=str)
    os.replace(partial, path)
    return path
