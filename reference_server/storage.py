"""SQLite storage (standard library), indexed for every QueryLog filter.

A log row keeps the indexed columns and the stored LogEntry itself, serialized; metadata pairs
go to their own table indexed on (key, value), so an exact metadata filter is an index lookup.
Writes and queries use separate connections (WAL on disk, a shared cache in memory), so a slow
query never holds up the flusher and a flush never holds up a query. Several server processes may
share one file (replicas over one store, ``make replicas``): a flush takes SQLite's write lock
first (``BEGIN IMMEDIATE``, waiting up to ``BUSY_TIMEOUT_SECONDS`` for another replica's flush) and
numbers its rows after the highest stored, so the replicas' ids never meet.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
import uuid
from collections.abc import Iterable
from typing import Any

from grpc_user.pb import log_service_pb2 as pb

DEFAULT_LIMIT = 100
BUSY_TIMEOUT_SECONDS = 30.0
SCHEMA = """
CREATE TABLE IF NOT EXISTS logs (
    rowid INTEGER PRIMARY KEY,
    service_name TEXT NOT NULL,
    level INTEGER NOT NULL,
    ts REAL NOT NULL,
    trace_id TEXT NOT NULL,
    entry BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_by_time ON logs (ts);
CREATE INDEX IF NOT EXISTS logs_by_service ON logs (service_name, level, ts);
CREATE INDEX IF NOT EXISTS logs_by_trace ON logs (trace_id);
CREATE TABLE IF NOT EXISTS log_metadata (
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    log_rowid INTEGER NOT NULL,
    PRIMARY KEY (key, value, log_rowid)
) WITHOUT ROWID;
"""


def parse_rfc3339(text: str) -> float | None:
    """Seconds since the epoch, or None when the text is not RFC 3339 (naive times are UTC)."""
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def _connect(uri: str) -> sqlite3.Connection:
    return sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_SECONDS)


class LogStore:
    """The stored logs: ``store`` from one thread (the flusher's), queries from another."""

    def __init__(self, path: str = "") -> None:
        uri = f"file:{path}" if path else f"file:reference-{uuid.uuid4().hex}?mode=memory&cache=shared"
        self._db = _connect(uri)
        if path:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._reader = _connect(uri)
        self._reader.execute("PRAGMA read_uncommitted = 1")

    def store(self, entries: Iterable[pb.LogEntry]) -> int:
        """Store entries in one transaction; an unparsable timestamp becomes the server's clock.

        Raises ``sqlite3.Error`` when the store cannot take them (another replica held the write lock for longer
        than ``BUSY_TIMEOUT_SECONDS``, a full disk): none of them is stored then.
        """
        entries = list(entries)
        if not entries:
            return 0
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            rowid = (self._db.execute("SELECT MAX(rowid) FROM logs").fetchone()[0] or 0) + 1
            rows, pairs = self._rows(entries, rowid)
            self._db.executemany("INSERT INTO logs VALUES (?, ?, ?, ?, ?, ?)", rows)
            self._db.executemany("INSERT INTO log_metadata VALUES (?, ?, ?)", pairs)
        return len(rows)

    @staticmethod
    def _rows(entries: list[pb.LogEntry], rowid: int) -> tuple[list[tuple[Any, ...]], list[tuple[str, str, int]]]:
        """Rows of ``logs`` numbered from ``rowid`` and their ``log_metadata`` pairs (ids set in the entries)."""
        rows: list[tuple[Any, ...]] = []
        pairs: list[tuple[str, str, int]] = []
        now = time.time()
        for entry in entries:
            ts = parse_rfc3339(entry.timestamp)
            if ts is None:
                ts = now
                entry.timestamp = dt.datetime.fromtimestamp(now, dt.UTC).isoformat()
            entry.id = f"{rowid:024x}"
            rows.append((rowid, entry.service_name, entry.level, ts, entry.trace_id, entry.SerializeToString()))
            pairs.extend((key, value, rowid) for key, value in entry.metadata.items())
            rowid += 1
        return rows, pairs

    def query(self, request: pb.QueryLogRequest) -> tuple[list[pb.LogEntry], int]:
        """Matching logs newest first (limit/offset applied) and the count of every match.

        Level, as the real service does it: filtered whenever it is not DEBUG (proto3 cannot tell DEBUG
        from unset) *or* service_name is set, so a query by service_name alone returns DEBUG logs only.
        """
        where: list[str] = ["1 = 1"]
        params: list[str | float] = []
        if request.service_name:
            where.append("service_name = ?")
            params.append(request.service_name)
        if request.level != pb.DEBUG or request.service_name:
            where.append("level = ?")
            params.append(request.level)
        for text, operator in ((request.start_time, ">="), (request.end_time, "<=")):
            moment = parse_rfc3339(text)
            if moment is not None:
                where.append(f"ts {operator} ?")
                params.append(moment)
        if request.trace_id:
            where.append("trace_id = ?")
            params.append(request.trace_id)
        for key, value in sorted(request.metadata_filters.items()):
            where.append("rowid IN (SELECT log_rowid FROM log_metadata WHERE key = ? AND value = ?)")
            params.extend((key, value))
        condition = " AND ".join(where)
        total = self._reader.execute(f"SELECT COUNT(*) FROM logs WHERE {condition}", params).fetchone()[0]
        limit = request.limit if request.limit > 0 else DEFAULT_LIMIT
        rows = self._reader.execute(
            f"SELECT entry FROM logs WHERE {condition} ORDER BY ts DESC, rowid DESC LIMIT ? OFFSET ?",
            [*params, limit, max(request.offset, 0)],
        ).fetchall()
        return [pb.LogEntry.FromString(row[0]) for row in rows], total

    def count(self) -> int:
        """How many logs are stored."""
        return self._reader.execute("SELECT COUNT(*) FROM logs").fetchone()[0]

    def close(self) -> None:
        """Close the database."""
        self._reader.close()
        self._db.close()
