"""Progress of a long wait (the delivery audit's, the capacity search's backlog): never a silent terminal.

On a terminal, a tqdm bar on stderr with the count, the rate and an ETA; without one (CI, Kubernetes,
a pipe), one log line every ``LOG_EVERY_SECONDS`` with the same figures.
"""

from __future__ import annotations

import logging
import sys
import time

from tqdm import tqdm

logger = logging.getLogger(__name__)
LOG_EVERY_SECONDS = 5.0
# tqdm's monitor is a thread; the wait updates its bar itself, so none is needed (under gevent it would be a greenlet).
tqdm.monitor_interval = 0


class WaitProgress:
    """A count towards ``total`` (``unit``: what is counted), shown as a bar or as periodic log lines."""

    def __init__(self, description: str, total: int, unit: str = "logs", *, terminal: bool | None = None) -> None:
        self.description, self.total, self.unit = description, max(total, 0), unit
        self._terminal = sys.stderr.isatty() if terminal is None else terminal
        self._started = self._logged = time.monotonic()
        self._count = 0
        self._bar = tqdm(total=self.total, desc=description, unit=f" {unit}", unit_scale=True, file=sys.stderr,
                         mininterval=0.5, dynamic_ncols=True, leave=False) if self._terminal else None  # fmt: skip

    def update(self, count: int) -> None:
        """The count now (it may go down: a bar shows it as it is)."""
        count = max(count, 0)
        if self._bar is not None:
            self._bar.update(count - self._count)  # tqdm redraws at most every mininterval, with rate and ETA
        self._count = count
        if self._bar is not None:
            return
        now = time.monotonic()
        if now - self._logged >= LOG_EVERY_SECONDS:
            self._logged = now
            logger.info("%s", self.line(now))

    def line(self, now: float | None = None) -> str:
        """``<description>: 12,345 of 309,014 logs (2,100 logs/s, about 141 s left)``."""
        elapsed = max((now or time.monotonic()) - self._started, 1e-9)
        rate = self._count / elapsed
        left = f", about {(self.total - self._count) / rate:,.0f} s left" if rate > 0 and self.total > self._count \
            else ""  # fmt: skip
        return (
            f"{self.description}: {self._count:,} of {self.total:,} {self.unit} ({rate:,.0f} {self.unit}/s"
            f"{left}, {elapsed:,.0f} s so far)"
        )

    def close(self) -> None:
        """Remove the bar (the verdict follows on its own line)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
