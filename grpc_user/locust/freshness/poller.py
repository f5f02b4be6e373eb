"""The probe's greenlet: one QueryLog per poll for the samples it looks for, outside Locust's stats, paced.

Its calls go over the process's shared grpc.aio transport and fire no request event: the workload's
requests/s and latency never include them; the probe counts them itself (``queries``, ``query_failures``).
``PollPacing`` says when the next poll may start. Its budget is ``--freshness-query-share`` of its process's calls
(plus one) over the whole test, the polls after the stop included: while the test runs it keeps ``RESERVE_QUERIES``
of it in hand for them. Within it the polls follow the service's flush cadence once ``FlushCadence`` has seen it (a
window of polls a poll interval apart around each predicted visibility instant, none between), and are spread
evenly otherwise, never closer than the poll interval. With a freshness SLO they come at least every tenth of it
whatever the share (a step is judged on a figure that precise). Once the budget is spent after the stop, the
samples still pending are looked for at the test's own pace or a quarter of the time since the stop, whichever is
longer (a few queries cover an audit of any length).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from grpc_user.calls import status_name
from grpc_user.locust.freshness.cadence import FlushCadence, Window
from grpc_user.locust.freshness.probe import FATAL_STATUSES, QUERY_PATH, FreshnessProbe, Look
from grpc_user.locust.transport.bridge import LoopStopped

logger = logging.getLogger(__name__)
Call = Callable[[str, bytes], bytes]
# After the stop, the gap to the next poll is at least this much of the time since the stop.
AFTER_STOP_RATIO = 0.25
# Queries kept in hand while the test runs, for the polls after the stop (a window around the next flush): this
# many at most, and a quarter of the budget until then (the first polls are not held up).
RESERVE_QUERIES = 2
RESERVE_SHARE = 1 / 4
# The polls follow the cadence only if the share pays for this many polls per period, in the test's calls so far.
WINDOW_POLLS = 2


@dataclass
class PollPacing:
    """When the probe may poll: ``interval`` (s) the shortest gap; ``share`` the most queries per call of the process
    (a fraction); ``calls()`` the process's calls in this test (a master: every worker's); ``started`` and
    ``stopped()`` the test's start and stop (s; ``stopped()`` is below ``started`` while it runs);
    ``longest``: the longest gap (s) whatever the share (``FreshnessProbe.longest_poll_gap``); ``cadence``: the
    service's flush cadence the polls follow once seen (None: even polls only). ``windowed``: whether the poll
    ``ready`` last allowed is one of a cadence window's."""

    interval: float
    share: float
    calls: Callable[[], int]
    started: float
    stopped: Callable[[], float] = lambda: 0.0
    longest: float = math.inf
    cadence: FlushCadence | None = None
    windowed: bool = False

    def affordable(self, queries: int, running: bool) -> int:
        """How many more queries the budget pays for, ``queries`` made so far (while the test runs, with
        ``RESERVE_QUERIES`` kept in hand unless ``running`` is False)."""
        budget = self.share * self.calls()
        reserve = min(RESERVE_QUERIES, RESERVE_SHARE * budget) if running else 0.0
        return math.floor(budget + 1 - reserve - queries + 1e-9)

    def _window(self, now: float) -> Window | None:
        """The cadence's window of polls, if the polls follow it: a period known, whose windows the share pays for
        at the rate of the test's calls so far."""
        if self.cadence is None or self.cadence.period is None:
            return None
        rate = self.calls() / max(min(now, self.stopped() if self.stopped() >= self.started else now) - self.started,
                                  self.interval)  # fmt: skip
        if WINDOW_POLLS > self.share * rate * self.cadence.period:
            return None
        return self.cadence.plan(now)

    def ready(self, now: float, last_poll: float, queries: int) -> bool:
        """May a poll start at ``now`` (s), the last one at ``last_poll``, ``queries`` made so far?"""
        self.windowed = False
        if now - last_poll < self.interval:
            return False
        if now - last_poll >= self.longest or not queries:
            return True
        running = self.stopped() < self.started
        window = self._window(now)
        if window is not None:
            if now < window.due_at(self.interval):
                return False
            polls = self.affordable(queries, running=False)  # a window may draw on the reserve
            if window.next == 0 and polls > 0:
                window.shrink(polls, self.interval)
                if now < window.due_at(self.interval):
                    return False
            if polls > 0:
                self.windowed = True
                return True
            if window.next == 0:
                self.cadence.skip()  # type: ignore[union-attr]
            if running:
                return False
        elif running:
            return self.affordable(queries, running) > 0
        pace = (self.stopped() - self.started) / max(self.share * self.calls(), 1.0)
        return now - last_poll >= max(pace, AFTER_STOP_RATIO * (last_poll - self.stopped()))

    def wake(self, now: float) -> float:
        """Seconds until the cadence's next planned poll (infinite when there is none)."""
        window = self._window(now)
        return math.inf if window is None else max(window.due_at(self.interval) - now, 0.0)

    @property
    def timed(self) -> bool:
        """Whether the poll ``ready`` last allowed is timed to the cadence: one of a window's planned polls after
        another (what it finds became visible since that one); not its first, not one past its end (the instant
        came later than predicted), not a lone poll after the instant."""
        window = self.cadence.window if self.cadence is not None else None
        return self.windowed and window is not None and not window.single and 0 < window.next < len(window.times)

    def looked(self, look: Look, offset: float = 0.0) -> None:
        """Tell the cadence what an answered poll found: when the current samples it found became visible (the
        look's times are on the probe's clock; ``offset`` turns them into the pacing's)."""
        if self.cadence is None or not look.current:
            return
        found = look.visible_between
        moved = None if found is None else (found[0] + offset, found[1] + offset)
        self.cadence.looked(look.asked_at + offset, moved, self.windowed)
        if self.windowed:
            self.cadence.overran()


def poll_once(probe: FreshnessProbe, call: Call, clock: Callable[[], float] = time.monotonic, everything: bool = False,
              windowed: bool = False, seen: Callable[[Look], Any] | None = None) -> int:  # fmt: skip
    """One poll: a QueryLog for the samples due (``everything``: every pending one); returns how many it found.
    ``windowed``: a poll of a cadence window (its samples count in the cadence's bound); ``seen(look)`` after an
    answer was read."""
    look = probe.look(clock(), everything)
    if look is None:
        return 0
    look.windowed = windowed
    asked_at = clock()
    probe.asking()
    try:
        raw = call(QUERY_PATH, look.payload)
    except grpc.RpcError as error:
        status = status_name(error)
        probe.failed(f"{status}: {error.details() or ''}".rstrip(": "), fatal=status in FATAL_STATUSES)
        if probe.closed:
            logger.warning("freshness probe stopped: QueryLog failed with %s", probe.error)
        return 0
    except LoopStopped as error:
        probe.failed(str(error), fatal=True)
        return 0
    found = probe.observe(look, raw, asked_at)
    if seen is not None:
        seen(look)
    return found


def poll_until_closed(
    probe: FreshnessProbe,
    call: Call,
    sleep: Callable[[float], Any],
    pacing: PollPacing,
    on_interval: Callable[[], Any] | None = None,
    interval_seconds: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
) -> None:
    """Poll as ``pacing`` allows until the probe closes; ``on_interval`` every ``interval_seconds``."""
    next_interval = clock()
    last_poll = float("-inf")
    offset = wall() - clock()  # the cadence's instants are on the pacing's clock
    while not probe.closed:
        now = clock()
        if on_interval is not None and now >= next_interval:
            on_interval()
            next_interval = max(next_interval + interval_seconds, now)
        probe.refresh_due()
        if len(probe.pending) and pacing.ready(wall(), last_poll, probe.queries):
            last_poll = wall()
            poll_once(probe, call, clock, windowed=pacing.timed,
                      seen=lambda look: pacing.looked(look, offset))  # fmt: skip
            continue
        tick = min(probe.poll_interval, pacing.wake(wall()))
        if on_interval is not None:
            tick = min(tick, next_interval - now)
        sleep(max(tick, 0.001))
