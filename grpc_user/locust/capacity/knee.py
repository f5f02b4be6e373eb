"""Where the service stops keeping up: a geometric ramp of offered rates finds the first bad step, then a
bisection between the last good and the first bad rate narrows the knee to a stated precision.

Pure decisions, no Locust: ``next_rate`` says what to offer next (None when done), ``record`` takes each
step's verdict. The precision is the knee interval's relative half-width: (bad - good) / (bad + good).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from grpc_user.locust.settings.rates import LOWEST_RATE

RAMP_FACTOR = 2.0


@dataclass
class KneeSearch:
    """The search state: the highest rate seen good and the lowest seen bad."""

    start: float
    precision: float = 0.1
    good: float = 0.0
    bad: float = math.inf
    tried: list[tuple[float, bool]] = field(default_factory=list)

    def next_rate(self) -> float | None:
        """The next rate to offer, or None when the knee is known to the precision (or below the lowest rate)."""
        if not self.tried:
            return self.start
        if math.isinf(self.bad):
            return self.good * RAMP_FACTOR
        if not self.good:
            lower = self.bad / RAMP_FACTOR
            return lower if lower >= LOWEST_RATE else None
        if self.achieved_precision() <= self.precision:
            return None
        return math.sqrt(self.good * self.bad)

    def record(self, rate: float, good: bool) -> None:
        """The verdict of a step offered at ``rate``."""
        self.tried.append((rate, good))
        if good:
            self.good = max(self.good, rate)
        else:
            self.bad = min(self.bad, rate)

    def achieved_precision(self) -> float:
        """The knee interval's relative half-width (inf while no bad step was seen)."""
        if math.isinf(self.bad) or not self.good:
            return math.inf
        return (self.bad - self.good) / (self.bad + self.good)
