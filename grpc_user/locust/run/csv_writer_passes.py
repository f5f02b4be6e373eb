"""The final figures in Locust's ``--csv`` files when a process quits, written at once rather than at the writer's
next pass.

Locust's ``StatsCSVFileWriter.stats_writer`` rewrites its ``--csv`` files and appends a history row once per
``CSV_STATS_INTERVAL_SEC`` (1 s), and not after the stop: the files a quitting process closes would hold the figures
of up to a second before it. Each pass calls the writer's ``_stats_history_data_rows`` once, without yielding to
another greenlet; wrapped here, that call tells which writer writes an environment's files, and where and when its
last history rows went. A quitting process then makes that pass itself (``write_final_figures``): the figures of now,
a history row for now (in place of the last pass's rows when they are of the same second, the history's resolution),
at once. It waited for the writer's next pass before: 0 to 1 s after the audit, 0.7 s in a 2 s run ended by ``-t``.

The writer's greenlet, known from its passes, ends after that final pass, or at Locust's ``quit`` event where none
was made, between two passes: Locust closes the files next and exits, and nothing ends the writer's loop; on Python
3.13 the exit let it run a pass on the closed files (``ValueError: I/O operation on closed file``, a traceback and exit
code 2 after a run with calls in flight).
"""

from __future__ import annotations

import functools
import time
import weakref
from dataclasses import dataclass
from typing import Any

import gevent
from locust.stats import CSV_STATS_INTERVAL_SEC, StatsCSVFileWriter

# Without the method (a Locust whose writer has no _stats_history_data_rows), a quitting process sleeps the interval and
# a margin, so that the writer passes once more.
UNCOUNTED_WAIT_SECONDS = CSV_STATS_INTERVAL_SEC + 0.2
# The writer's loop ends at its sleep between passes: at once, and never waited for longer than this (s).
KILL_TIMEOUT_SECONDS = 1.0


@dataclass
class _LastPass:
    """An environment's ``--csv`` writer, and its last pass: the time it wrote, its history file's length before, and
    the greenlet that made it (the writer's loop)."""

    writer: StatsCSVFileWriter
    now: float
    history_start: int
    greenlet: Any


# Per environment watched (count_csv_writer_passes): its writer's last pass, None before the first.
_PASSES: weakref.WeakKeyDictionary[Any, _LastPass | None] = weakref.WeakKeyDictionary()


def _counted(write_history_rows: Any) -> Any:
    @functools.wraps(write_history_rows)
    def counted(writer: StatsCSVFileWriter, csv_writer: Any, now: float) -> None:
        watched = writer.environment in _PASSES
        start = writer.stats_history_csv_filehandle.tell() if watched else 0
        write_history_rows(writer, csv_writer, now)
        if watched:  # the first pass is the loop's (write_final_figures makes one only after it)
            last = _PASSES[writer.environment]
            loop = gevent.getcurrent() if last is None else last.greenlet
            _PASSES[writer.environment] = _LastPass(writer, now, start, loop)

    counted.counts_passes = True  # type: ignore[attr-defined]
    return counted


def count_csv_writer_passes(environment: Any) -> bool:
    """Watch the passes of the ``--csv`` writer of ``environment`` from now on (Locust's ``main`` keeps its writer to
    itself: ``StatsCSVFileWriter._stats_history_data_rows`` is wrapped, once per process). False, watching nothing,
    where the pinned Locust's writer has no such method."""
    write_history_rows = getattr(StatsCSVFileWriter, "_stats_history_data_rows", None)
    if write_history_rows is None:
        return False
    if not getattr(write_history_rows, "counts_passes", False):
        StatsCSVFileWriter._stats_history_data_rows = _counted(write_history_rows)  # type: ignore[method-assign]
    if environment not in _PASSES:
        _PASSES[environment] = None
        environment.events.quit.add_listener(lambda **_: stop_csv_writer(environment))
    return True


def stop_csv_writer(environment: Any) -> None:
    """End the ``--csv`` writer's loop of ``environment`` now, between two passes (it is asleep between them), before
    Locust closes its files; nothing when it made no pass."""
    last = _PASSES.get(environment)
    if last is not None:
        last.greenlet.kill(block=True, timeout=KILL_TIMEOUT_SECONDS)


def _rewrite(handle: Any, write: Any, csv_writer: Any) -> None:
    handle.seek(0)
    write(csv_writer)
    handle.truncate()
    handle.flush()


def write_final_figures(environment: Any) -> bool:
    """Write the figures of now into the ``--csv`` files of ``environment`` as its writer's next pass would, at once:
    ``_stats.csv``, ``_failures.csv`` and ``_exceptions.csv`` rewritten, a history row (or one per name with
    ``--csv-full-history``) stamped now, in place of the last pass's when they are of the same second; then the
    writer's loop ends, this being the last pass (a pass of the loop before Locust's ``quit``, ~1 s later on a
    ``--processes`` master, repeated the history's last second). True; False when the writer has made no pass to
    learn it from (nothing is written), or after ``UNCOUNTED_WAIT_SECONDS`` (s) of sleep, for its next pass, where
    passes are not watched."""
    if environment not in _PASSES:
        gevent.sleep(UNCOUNTED_WAIT_SECONDS)
        return False
    last = _PASSES[environment]
    if last is None:
        return False
    writer, now = last.writer, time.time()
    _rewrite(writer.requests_csv_filehandle, writer.requests_csv, writer.requests_csv_writer)
    _rewrite(writer.failures_csv_filehandle, writer.failures_csv, writer.failures_csv_writer)
    _rewrite(writer.exceptions_csv_filehandle, writer.exceptions_csv, writer.exceptions_csv_writer)
    history = writer.stats_history_csv_filehandle
    if int(now) == int(last.now):
        history.seek(last.history_start)
        history.truncate()
    StatsCSVFileWriter._stats_history_data_rows(writer, writer.stats_history_csv_writer, now)
    history.flush()
    stop_csv_writer(environment)
    return True
