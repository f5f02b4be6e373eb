"""Rates of the open model, calls per second in total: ``--arrival-rate`` schedules (a constant rate, a linear ramp,
or a ramp in steps) and the lowest rate a capacity search offers.

Pure values: the clock that turns a schedule into call starts is ``grpc_user.locust.open_model.clock``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_TIMESPAN = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?")
# Below this rate, a service that fails even there has no capacity worth searching for (``--capacity-start``).
LOWEST_RATE = 1.0
# The most calls per second in total any rate option takes: some 1,700 processes at the suite's 6,000 calls/s a core.
# More is a typo (1e15), and a clock scheduling calls 1e-15 s apart would only spin.
HIGHEST_RATE = 10_000_000.0
ACCEPTED = (
    "calls per second R > 0 in total (e.g. 500), a ramp START:END:DURATION (e.g. 100:2000:60s), "
    f"or steps START:END:DURATION:STEPS (e.g. 100:2000:60s:10), each rate at most {HIGHEST_RATE:.0f}"
)


def parse_seconds(text: str) -> float:
    """``90``, ``90s``, ``2m``, ``1h30m``: whole seconds, as Locust's ``--run-time`` reads them (stricter: the whole
    text must match, and no negative span); ValueError."""
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
    valid_rates = all(math.isfinite(rate) and 0 < rate <= HIGHEST_RATE for rate in rates)
    if len(parts) not in (1, 3, 4) or not valid_rates or (len(parts) > 2 and seconds <= 0) or steps < 0 \
            or steps == 1 or not re.fullmatch(r"[0-9.:a-z]+", str(raw).strip()):  # fmt: skip
        raise ValueError(ACCEPTED)
    return RateSchedule(rates[0], rates[-1], seconds, steps)
