"""One traceback per kind of exception a locustfile's task raises, then a count.

Locust logs the traceback of every exception a task raises (a task that fails on each call printed 5,640
tracebacks in 3 s) and counts them in its exceptions table (``--exceptions``, ``_exceptions.csv``). The filter
lets the first of each kind through (the exception's type and where it was raised, as Locust groups them) and
counts the rest; when Locust quits, one line per kind says how many were not printed.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass

# The loggers Locust writes a task's exception to: TaskSet.run and User.run.
TASK_LOGGERS = ("locust.user.task", "locust.user.users")
logger = logging.getLogger(__name__)


@dataclass
class Kind:
    """One kind of task exception: its first message, where it was raised, how often."""

    first: str
    where: str
    count: int = 0


class FirstTracebackOfEachKind(logging.Filter):
    """Passes the first task-exception record of each kind; counts and drops the others."""

    def __init__(self) -> None:
        super().__init__()
        self.kinds: dict[tuple[str, str], Kind] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.args[0] if isinstance(record.args, tuple) and record.args else None
        if not isinstance(error, BaseException):
            return True
        frames = traceback.extract_tb(error.__traceback__)
        key = (type(error).__qualname__, "".join(traceback.format_list(frames)))
        kind = self.kinds.get(key)
        if kind is None:
            where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
            kind = self.kinds[key] = Kind(f"{type(error).__qualname__}: {error}", where)
        kind.count += 1
        return kind.count == 1

    def report(self) -> None:
        """One line per kind whose later tracebacks were not printed."""
        for kind in self.kinds.values():
            if kind.count > 1:
                logger.warning("%s (at %s) was raised %d times in tasks; only its first traceback was printed, all "
                               "are counted in Locust's exceptions table (--exceptions, _exceptions.csv)",
                               kind.first, kind.where, kind.count)  # fmt: skip


_ONLY_FIRST = FirstTracebackOfEachKind()


def install() -> None:
    """Put the process's filter on Locust's task loggers (idempotent)."""
    for name in TASK_LOGGERS:
        if _ONLY_FIRST not in logging.getLogger(name).filters:
            logging.getLogger(name).addFilter(_ONLY_FIRST)


def report() -> None:
    """The count of each kind whose later tracebacks were not printed, one line each."""
    _ONLY_FIRST.report()
