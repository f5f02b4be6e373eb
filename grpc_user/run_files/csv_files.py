"""The suite's CSV files, written from the figures the plugin hands over, in the columns ``schema`` declares.

Totals are written once (``write_*``: the whole file, returning its path); histories are appended once per stats
interval by a ``*History`` object that opens its file with the header, flushes every row and is closed at the end
of the test (the rows already written stay). Timestamps are Unix seconds. Raises OSError when a file cannot be
written.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any, Protocol

from grpc_user.histograms import PERCENTILES, LatencyHistograms
from grpc_user.run_files.schema import (
    ACTIONS,
    AGGREGATED,
    ARRIVALS,
    ARRIVALS_HISTORY,
    DROPPED_CAUSE_PREFIX,
    FRESHNESS,
    FRESHNESS_HISTORY,
    LATENCY,
    LOGS,
    LOGS_HISTORY,
    PEERS,
    PEERS_HISTORY,
    PHASE_ROW_PREFIX,
    REQUEST_TYPE,
    CsvFile,
)

__all__ = [
    "ActionRow",
    "ArrivalsHistory",
    "CountsHistory",
    "FreshnessHistory",
    "LogTotals",
    "write_actions",
    "write_arrivals",
    "write_freshness",
    "write_latency",
    "write_logs",
    "write_peers",
]


class LogTotals(Protocol):
    """The logs of some requests (``grpc_user.locust.counts.logs.RpcLogs``)."""

    @property
    def requests(self) -> int: ...
    @property
    def sent(self) -> int: ...
    @property
    def acked(self) -> int: ...
    @property
    def rejected(self) -> int: ...
    @property
    def in_doubt(self) -> int: ...


class ActionRow(Protocol):
    """What became of one ``--action`` (``grpc_user.locust.actions.command.ActionOutcome``); Unix seconds."""

    @property
    def phase(self) -> int: ...
    @property
    def at(self) -> float: ...
    @property
    def command(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def exit_code(self) -> int | None: ...
    @property
    def started_at(self) -> float | None: ...
    @property
    def ended_at(self) -> float | None: ...
    @property
    def duration(self) -> float | None: ...
    @property
    def output_lines(self) -> int: ...
    @property
    def output(self) -> list[str]: ...
    @property
    def detail(self) -> str: ...
    @property
    def output_bytes(self) -> int: ...


def _write(file: CsvFile, prefix: str, rows: Iterable[Sequence[Any]], header: Sequence[str] | None = None) -> str:
    path = file.path(prefix)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(file.columns if header is None else header)
        writer.writerows(rows)
    return path


def _ms(value: float) -> str:
    """Milliseconds with microsecond decimals."""
    return f"{value:.3f}"


def _by_name(by_name: Mapping[str, LogTotals], total: LogTotals) -> list[tuple[str, str, Any]]:
    return [(REQUEST_TYPE, name, logs) for name, logs in sorted(by_name.items())] + [("", AGGREGATED, total)]


def write_logs(prefix: str, by_name: Mapping[str, LogTotals], total: LogTotals) -> str:
    """``<prefix>_logs.csv``: requests and logs sent, acked, rejected, in doubt per request name, then the
    ``total`` as the Aggregated row."""
    rows = [(kind, name, logs.requests, logs.sent, logs.acked, logs.rejected, logs.in_doubt)
            for kind, name, logs in _by_name(by_name, total)]  # fmt: skip
    return _write(LOGS, prefix, rows)


def write_latency(prefix: str, histograms: LatencyHistograms, file: CsvFile = LATENCY) -> str:
    """``<prefix>_latency.csv`` (or ``file``: SERVICE_TIME): per (name, outcome), then Aggregated per outcome over
    every name (``--max-p95-ok-ms`` reads the Aggregated OK row); ms with µs decimals."""
    rows = [(name, outcome, summary.count, _ms(summary.mean_ms),
             *(_ms(summary.percentiles_ms[share]) for share in PERCENTILES), _ms(summary.max_ms), _ms(summary.min_ms))
            for name, outcome, summary in histograms.rows()]  # fmt: skip
    return _write(file, prefix, rows)


def write_peers(prefix: str, by_peer: Mapping[str, int], listed: Iterable[str] = ()) -> str:
    """``<prefix>_peers.csv``: calls per server address, most first; ``listed`` servers (the target's addresses)
    that no call reached get a row of 0."""
    counts = {peer: 0 for peer in listed} | dict(by_peer)
    return _write(PEERS, prefix, sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def write_arrivals(prefix: str, made: int, dropped_by_cause: Mapping[str, int]) -> str:
    """``<prefix>_arrivals.csv``: one row of calls offered (made + dropped), made and dropped, then one ``Dropped
    <CAUSE>`` column per key of ``dropped_by_cause`` (every cause, in its order, 0 for none)."""
    dropped = sum(dropped_by_cause.values())
    header = (*ARRIVALS.columns, *(f"{DROPPED_CAUSE_PREFIX}{cause}" for cause in dropped_by_cause))
    return _write(ARRIVALS, prefix, [(made + dropped, made, dropped, *dropped_by_cause.values())], header)


def write_freshness(prefix: str, figures: Mapping[str, Any]) -> str:
    """``<prefix>_freshness.csv`` from the freshness ``figures`` (``grpc_user.locust.freshness.files.figures``:
    ``by_name`` and ``aggregated`` rows of samples, visible, never_visible, p50, p95, p99, max in ms, unknown and the
    row's own ``max_poll_gap_ms``, and the run's ``poll_interval_ms``); with ``--action``, a row ``phase N`` per phase
    after the ``Aggregated`` one, with its ``no_sample_because``."""
    named = [*figures["by_name"].items(), (AGGREGATED, figures["aggregated"]),
             *((f"{PHASE_ROW_PREFIX}{row['phase']}", row) for row in figures.get("phases", []))]  # fmt: skip
    rows = [(name, row["samples"], row["visible"], row["never_visible"], row["p50"], row["p95"], row["p99"],
             row["max"], figures["poll_interval_ms"], row["unknown"], row["max_poll_gap_ms"],
             row.get("no_sample_because", ""))
            for name, row in named]  # fmt: skip
    return _write(FRESHNESS, prefix, rows)


def write_actions(prefix: str, outcomes: Sequence[ActionRow]) -> str:
    """``<prefix>_actions.csv``: one row per action (times to the ms, empty while unknown), the first lines of its
    output joined with `` | ``."""

    def stamp(moment: float | None) -> str:
        return "" if moment is None else f"{moment:.3f}"

    rows = [(o.phase, f"{o.at:g}", o.command, o.status, "" if o.exit_code is None else o.exit_code,
             stamp(o.started_at), stamp(o.ended_at), stamp(o.duration), o.output_lines, " | ".join(o.output),
             o.detail, o.output_bytes) for o in outcomes]  # fmt: skip
    return _write(ACTIONS, prefix, rows)


class _History:
    """One history CSV, open from the start of a test to its end; each append flushed."""

    def __init__(self, file: CsvFile, prefix: str) -> None:
        self.path = file.path(prefix)
        self._handle: IO[str] | None = open(self.path, "w", newline="")
        csv.writer(self._handle).writerow(file.columns)
        self._handle.flush()

    def _append(self, rows: Iterable[Sequence[Any]]) -> None:
        if self._handle is not None:
            csv.writer(self._handle).writerows(rows)
            self._handle.flush()

    def close(self) -> None:
        """Close the file (the rows already written stay); later appends write nothing."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class _LogsHistory(_History):
    def __init__(self, prefix: str) -> None:
        super().__init__(LOGS_HISTORY, prefix)

    def append(self, now: int, user_count: int, rows: list[tuple[str, str, Any]]) -> None:
        self._append((now, user_count, kind, name, logs.sent, logs.acked) for kind, name, logs in rows)


class _PeersHistory(_History):
    """Rows only when the counts changed (they are read every few seconds, not every interval); before the first,
    a row of 0 per peer at the start, where each count started from."""

    def __init__(self, prefix: str) -> None:
        super().__init__(PEERS_HISTORY, prefix)
        self._started = int(time.time())
        self._written: dict[str, int] = {}

    def append(self, now: int, by_peer: Mapping[str, int]) -> None:
        if dict(by_peer) == self._written:
            return
        rows = [(now, peer, calls) for peer, calls in sorted(by_peer.items())]
        if not self._written and now > self._started:
            rows = [(self._started, peer, 0) for peer in sorted(by_peer)] + rows
        self._written = dict(by_peer)
        self._append(rows)


class CountsHistory:
    """``<prefix>_logs_history.csv`` (cumulative logs sent and acked per request name and Aggregated) and
    ``<prefix>_peers_history.csv`` (cumulative calls per server), appended once per stats interval."""

    def __init__(self, prefix: str) -> None:
        self._logs = _LogsHistory(prefix)
        self._peers = _PeersHistory(prefix)
        self.path, self.peers_path = self._logs.path, self._peers.path

    def append(self, user_count: int, by_name: Mapping[str, LogTotals], total: LogTotals,
               by_peer: Mapping[str, int] | None = None) -> None:  # fmt: skip
        """One row per request name and an Aggregated row, stamped now; the calls per peer when they changed."""
        now = int(time.time())
        self._logs.append(now, user_count, _by_name(by_name, total))
        if by_peer is not None:
            self._peers.append(now, by_peer)

    def close(self) -> None:
        """Close both files."""
        self._logs.close()
        self._peers.close()


class ArrivalsHistory(_History):
    """``<prefix>_arrivals_history.csv``: cumulative calls offered, made and dropped, once per stats interval."""

    def __init__(self, prefix: str) -> None:
        super().__init__(ARRIVALS_HISTORY, prefix)

    def append(self, user_count: int, made: int, dropped: int) -> None:
        """One row stamped now (offered is made + dropped)."""
        self._append([(int(time.time()), user_count, made + dropped, made, dropped)])


class FreshnessHistory(_History):
    """``<prefix>_freshness_history.csv``: the sampled logs found visible, per second of their acknowledgement and
    request name."""

    def __init__(self, prefix: str) -> None:
        super().__init__(FRESHNESS_HISTORY, prefix)

    def append(self, second: int, rows: Mapping[str, Mapping[str, Any]]) -> None:
        """One row per name stamped ``second`` (epoch s: the samples acknowledged in it), from its ``visible`` count and
        ``p50``, ``p95``, ``p99``, ``max`` in ms."""
        self._append((second, name, row["visible"], row["p50"], row["p95"], row["p99"], row["max"])
                     for name, row in rows.items())  # fmt: skip
