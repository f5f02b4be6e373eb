"""The passes of Locust's ``--csv`` writer, so that a quitting process waits for one after its stop, not a whole
interval.

Locust's ``StatsCSVFileWriter.stats_writer`` rewrites its ``--csv`` files and appends a history row once per
``CSV_STATS_INTERVAL_SEC`` (1 s), and not after the stop: a process that quits must let it pass once more, so the
files it closes hold the final figures. Each pass calls the writer's ``_stats_history_data_rows`` once, without
yielding to another greenlet; that call, counted here, says a pass ran. A quitting process then waits 0 to 1 s (the
next pass), where it slept a whole interval and a margin (1.2 s) before: on average 0.7 s sooner, 0.2 s for a run
ended by ``-t`` (its timer and the writer's passes start together, so a pass comes just before the stop).
"""

from __future__ import annotations

import functools
import weakref
from typing import Any

import gevent.event
from locust.stats import CSV_STATS_INTERVAL_SEC, StatsCSVFileWriter

# Without counted passes (a Locust whose writer has no _stats_history_data_rows), the wait is the interval and a
# margin, as before; with them it ends at the pass, and a busy process's late pass is waited for up to two intervals.
UNCOUNTED_WAIT_SECONDS = CSV_STATS_INTERVAL_SEC + 0.2
PASS_TIMEOUT_SECONDS = 2 * CSV_STATS_INTERVAL_SEC + 0.2
# Per environment: set by each pass of its --csv writer.
_PASSES: weakref.WeakKeyDictionary[Any, gevent.event.Event] = weakref.WeakKeyDictionary()


def _counted(write_history_rows: Any) -> Any:
    @functools.wraps(write_history_rows)
    def counted(writer: StatsCSVFileWriter, *args: Any, **kwargs: Any) -> None:
        write_history_rows(writer, *args, **kwargs)
        if (passed := _PASSES.get(writer.environment)) is not None:
            passed.set()

    counted.counts_passes = True  # type: ignore[attr-defined]
    return counted


def count_csv_writer_passes(environment: Any) -> bool:
    """Count the passes of the ``--csv`` writer of ``environment`` from now on (Locust's ``main`` keeps its writer to
    itself: ``StatsCSVFileWriter._stats_history_data_rows`` is wrapped, once per process). False, counting nothing,
    where the pinned Locust's writer has no such method."""
    write_history_rows = getattr(StatsCSVFileWriter, "_stats_history_data_rows", None)
    if write_history_rows is None:
        return False
    if not getattr(write_history_rows, "counts_passes", False):
        StatsCSVFileWriter._stats_history_data_rows = _counted(write_history_rows)  # type: ignore[method-assign]
    _PASSES.setdefault(environment, gevent.event.Event())
    return True


def wait_for_a_csv_writer_pass(environment: Any) -> bool:
    """Return once the ``--csv`` writer of ``environment`` has made a whole pass that started after this call (its
    files then hold the figures of now): True; False after ``PASS_TIMEOUT_SECONDS`` (s) without one, or after
    ``UNCOUNTED_WAIT_SECONDS`` where passes are not counted."""
    passed = _PASSES.get(environment)
    if passed is None:
        gevent.sleep(UNCOUNTED_WAIT_SECONDS)
        return False
    passed.clear()
    # set() in the pass wakes this greenlet only when the writer yields: at the end of the pass (its gevent.sleep)
    return passed.wait(PASS_TIMEOUT_SECONDS)
