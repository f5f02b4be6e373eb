"""When the service makes logs visible: the freshness probe's polls timed to its flushes.

A sample's figure is late by at most the gap between the last poll that did not return it and the first that did.
A service that stores on a flush timer (the contract's service, the reference server) makes every log queued since
its last flush visible at one instant, so what bounds the error is a pair of polls close together around each such
instant, not polls spread evenly. ``FlushCadence`` learns the instants from the polls that found samples (each
located between the latest acknowledgement or look of a sample it found and the earliest acknowledgement of a
sample it did not find, within the two polls), and once three of them, with a poll that found nothing between each
two, lie two equal periods apart (within a poll interval; at least ``MIN_PERIOD_STEPS`` poll intervals each), it
plans a window of polls ``step`` apart around the next predicted instant and none between windows. A visibility
outside its window (a service that
stores continuously, by size at a varying rate, or moved its timer) ends the lock: the polls are even again until
the cadence is seen anew. Times are seconds on one clock (the poller's).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

# A period shorter than this many poll intervals leaves no room between windows: not followed.
MIN_PERIOD_STEPS = 3.0
# The flush instants wander by at least this much (s) from one period to the next (a busy machine, a flush's own
# duration): the windows are at least this much wider than the instants' own uncertainty.
MIN_JITTER = 0.015
# Events kept to fit the period (the last ones, one period apart or a few).
FIT_EVENTS = 8
# A window that ends without a visibility goes on this many more polls before the lock is given up.
OVERRUN_POLLS = 2
# A window needing more polls than this (its instant too uncertain) is not planned: the polls stay even.
MAX_WINDOW_POLLS = 5


@dataclass(slots=True)
class Window:
    """The polls planned around one predicted visibility instant ``target``: ``times`` (s), a poll interval apart;
    ``next``: the index of the next one due (``len(times)`` and beyond: overrun polls, one interval after the last
    poll). ``single``: the budget paid for one poll only, after the instant (its samples are not counted as found
    by the cadence's polls)."""

    target: float
    times: list[float]
    next: int = 0
    last_poll: float = -math.inf
    single: bool = False

    def due_at(self, step: float) -> float:
        """When its next poll is due."""
        return self.times[self.next] if self.next < len(self.times) else self.last_poll + step

    def left(self) -> int:
        """Polls still planned (the overrun ones too)."""
        return len(self.times) + (0 if self.single else OVERRUN_POLLS) - self.next

    def shrink(self, polls: int, step: float) -> None:
        """Keep ``polls`` of its polls (at least one), centered on the target; one poll goes after it."""
        if polls >= len(self.times):
            return
        if polls <= 1:
            self.times, self.single = [self.times[-1]], True
            return
        start = self.target - (polls - 1) * step / 2
        self.times = [start + i * step for i in range(polls)]


@dataclass
class FlushCadence:
    """The visibility instants seen (``events``: (period index, center, half-width), s), the period once locked,
    and the window of polls planned around the next instant. ``step``: the poll interval (s)."""

    step: float
    period: float | None = None
    events: list[tuple[int, float, float]] = field(default_factory=list)
    window: Window | None = None
    missed: bool = False
    jitter: float = MIN_JITTER

    @property
    def locked(self) -> bool:
        """Whether the polls follow the cadence (a period is known)."""
        return self.period is not None

    def looked(self, at: float, found_at: tuple[float, float] | None, windowed: bool) -> None:
        """A poll at ``at`` (one of the window's: ``windowed``) looked for current samples: ``found_at`` is None when
        it found none of them, else the interval (earliest, latest) in which the samples it found became visible."""
        if windowed and self.window is not None:
            self.window.next += 1
            self.window.last_poll = at
        if found_at is None:
            self.missed = True
            return
        self._event(*found_at)
        self.missed = False

    def _event(self, low: float, high: float) -> None:
        center, half = (low + high) / 2, max((high - low) / 2, 0.0)
        logger.debug("freshness cadence: visible between %.3f and %.3f (period %s, missed %s)", low, high,
                     self.period, self.missed)  # fmt: skip
        window, self.window = self.window, None
        if window is not None and window.next == 1 and center < window.times[0] - self.step:
            window = None  # found by the window's first poll, well before it: the instant moved
        since = center - self.events[-1][1] if self.events else 0.0
        if self.period is not None and window is not None and since >= MIN_PERIOD_STEPS * self.step:
            index = self.events[-1][0] + max(round(since / self.period), 1)
            self.events = [*self.events[-(FIT_EVENTS - 1) :], (index, center, half)]
            self._fit()
            return
        chain = (
            self.events[-2:] if self.period is None and self.missed and since >= MIN_PERIOD_STEPS * self.step else []
        )
        self.period = None
        self.events = [(index, moment, width) for index, (_, moment, width) in enumerate(chain)]
        self.events.append((len(self.events), center, half))
        if len(self.events) == 3 and abs(self.events[2][1] - 2 * self.events[1][1] + self.events[0][1]) <= self.step:
            self._fit()  # two periods in a row that agree: followed from now on, unless too uncertain
            if self._polls(self._spread(1)) > MAX_WINDOW_POLLS:
                self.period = None

    def _fit(self) -> None:
        """The period from the first and last events kept, and how far the instants stray from it."""
        first, last = self.events[0], self.events[-1]
        period = (last[1] - first[1]) / (last[0] - first[0])
        self.period = period
        strays = [abs(center - (last[1] - (last[0] - index) * period)) for index, center, _ in self.events[1:-1]]
        self.jitter = max([MIN_JITTER, *strays])

    def _spread(self, periods: int) -> float:
        """How far the instant ``periods`` periods after the last event may be from its prediction (s)."""
        (first, _, first_half), (last, _, half) = self.events[0], self.events[-1]
        return half + periods * ((first_half + half) / max(last - first, 1) + self.jitter)

    def _polls(self, spread: float) -> int:
        return max(2, math.ceil(2 * spread / self.step - 1e-9) + 1)

    def plan(self, now: float) -> Window | None:
        """The window of polls around the next instant not seen yet (None when not locked); a window whose polls
        all passed without one being made (no sample was pending) gives way to the next."""
        if self.period is None:
            return None
        window = self.window
        if window is not None and window.next == 0 and now > window.times[-1] + self.step:
            window = None
        if window is None:
            periods = max(1, math.floor((now - self.events[-1][1]) / self.period))
            while self.events[-1][1] + periods * self.period + self._spread(periods) < now:
                periods += 1
            target = self.events[-1][1] + periods * self.period
            polls = min(self._polls(self._spread(periods)), MAX_WINDOW_POLLS)
            start = target - (polls - 1) * self.step / 2
            window = Window(target, [start + i * self.step for i in range(polls)])
            self.window = window
        return window

    def overran(self) -> bool:
        """The window's polls, its overrun ones too, all found nothing: the lock is given up (even polls until the
        cadence is seen anew)."""
        window = self.window
        if window is None or window.left() > 0:
            return False
        self.period, self.window = None, None
        self.events = self.events[-1:]
        return True

    def skip(self) -> None:
        """The budget cannot pay for a poll of the window now: it moves to the next predicted instant."""
        if self.window is not None and self.period is not None:
            self.window.times = [time + self.period for time in self.window.times]
            self.window.target += self.period
