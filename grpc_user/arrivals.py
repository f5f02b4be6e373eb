"""``--arrival-rate``: calls start on a clock that does not wait for answers (an open model, like k6's
constant-arrival-rate or wrk2), and each call's latency counts from when it should have started.

The rate is a total over every process. Each process takes its share in proportion to the users it
runs (``-u`` is the most calls in flight at once), so the shares add up to the rate exactly however
users are spread over workers. A user that becomes free reserves the next scheduled start and
sleeps until it; a scheduled start that passed while every user was busy is **dropped**, counted
and reported (``ARRIVAL_DROPPED``), never silently delayed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

# A reserved start may be served this late (gevent's wake-up jitter) before it counts as dropped.
LATE_TOLERANCE_SECONDS = 0.005
# With no rate (no users yet), look again this much later.
IDLE_STEP_SECONDS = 0.05
_TIMESPAN = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?")
ACCEPTED = ("calls per second R > 0 in total (e.g. 500), a ramp START:END:DURATION (e.g. 100:2000:60s), "
            "or steps START:END:DURATION:STEPS (e.g. 100:2000:60s:10)")  # fmt: skip


def parse_seconds(text: str) -> float:
    """``90``, ``90s``, ``2m``, ``1h30m``: seconds, as Locust's ``--run-time`` reads them (without importing Locust,
    which would monkey-patch the process of a client or server that imports the settings)."""
    found = _TIMESPAN.fullmatch(text.strip())
    if not found or not any(found.groups()):
        raise ValueError(text)
    hours, minutes, seconds = (int(group or 0) for group in found.groups())
    return float(hours * 3600 + minutes * 60 + seconds)


@dataclass(frozen=True)
class RateSchedule:
    """Calls per second in total, as a function of the seconds since the test started."""

    start: float
    end: float
    seconds: float = 0.0
    steps: int = 0

    def rate(self, elapsed: float) -> float:
        """The rate ``elapsed`` seconds into the test (after the ramp: ``end``)."""
        if self.seconds <= 0 or elapsed >= self.seconds:
            return self.end
        done = max(elapsed, 0.0) / self.seconds
        if self.steps:
            done = math.floor(done * self.steps) / max(self.steps - 1, 1)
        return self.start + (self.end - self.start) * min(done, 1.0)

    def __str__(self) -> str:
        if self.seconds <= 0:
            return f"{self.end:g}"
        return f"{self.start:g}:{self.end:g}:{self.seconds:g}s" + (f":{self.steps}" if self.steps else "")


def parse_rate_schedule(raw: str) -> RateSchedule:
    """``R``, ``START:END:DURATION`` or ``START:END:DURATION:STEPS``; ValueError naming what is accepted."""
    parts = str(raw).strip().split(":")
    try:
        rates = [float(part) for part in parts[:2]]
        seconds = parse_seconds(parts[2]) if len(parts) > 2 else 0.0
        steps = int(parts[3]) if len(parts) > 3 else 0
    except (ValueError, IndexError):
        raise ValueError(ACCEPTED) from None
    valid_rates = all(math.isfinite(rate) and rate > 0 for rate in rates)
    if len(parts) not in (1, 3, 4) or not valid_rates or (len(parts) > 2 and seconds <= 0) or steps < 0 \
            or steps == 1 or not re.fullmatch(r"[0-9.:a-z]+", str(raw).strip()):  # fmt: skip
        raise ValueError(ACCEPTED)
    return RateSchedule(rates[0], rates[-1], seconds, steps)


class ArrivalClock:
    """This process's scheduled call starts: its share of the schedule, reserved in order by free users."""

    def __init__(self, schedule: RateSchedule, share: Callable[[], float], started: float) -> None:
        self._schedule, self._share, self._started = schedule, share, started
        self._next: float | None = None  # the first start is the first free user's: none is offered before
        self.reserved = 0
        self.dropped = 0

    def rate(self, at: float) -> float:
        """This process's rate at epoch time ``at``."""
        return self._schedule.rate(at - self._started) * self._share()

    def reserve(self, now: float) -> tuple[float, int]:
        """The next scheduled start for a user free at ``now``, and how many passed with every user busy."""
        if self._next is None:
            self._next = now
        dropped = self.drop_until(now - LATE_TOLERANCE_SECONDS)
        scheduled = self._next
        self._advance(1)
        self.reserved += 1
        return scheduled, dropped

    def drop_until(self, moment: float) -> int:
        """Count as dropped every start scheduled before ``moment`` that no user reserved."""
        dropped = 0
        while self._next is not None and self._next < moment:
            rate = self.rate(self._next)
            count = max(1, int((moment - self._next) * rate)) if rate > 0 else 0
            if not count:
                self._next = min(moment, self._next + IDLE_STEP_SECONDS)
                continue
            self._advance(count)
            dropped += count
        self.dropped += dropped
        return dropped

    def _advance(self, count: int) -> None:
        assert self._next is not None
        rate = self.rate(self._next)
        self._next += count / rate if rate > 0 else IDLE_STEP_SECONDS
