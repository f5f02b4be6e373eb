"""When the freshness probe samples: all the time while its query share pays for a poll every poll interval, in
sampling windows otherwise.

A found sample's figure is late by at most the gap between the last poll that did not return it (or its
acknowledgement) and the poll that did. The probe polls every poll interval while a sample of the current window is
pending, so for a sample found within its window's budget that gap is the poll interval; what the share
(``--freshness-query-share``) limits is how many samples are taken, and, for samples slower than their window was
funded for, how often they are looked for (their wider brackets are stated). Above ``CONTINUOUS_MARGIN / (share x
interval)`` calls/s (~830 at the defaults) the share pays for a poll every interval and the probe samples at its
whole rate. Below, it alternates: it saves up its share, waits a random moment (uniform over the longest visibility
found so far: a window that opened right after its previous samples became visible, right after a flush, would
sample only the logs acknowledged just after one), samples at its rate for about that longest visibility (a flush
period's worth of logs, evenly spread over the flush phase), polls until those samples are visible, and saves up
again. Samples still pending when the budget is spent (a service slower than the window was funded for) are looked
for on their own turns (``PendingSamples``' overdue schedule), within the share. Times are seconds: ``now`` on the
budget's clock (``time.time``), ``probe_now`` on the probe's (``time.monotonic``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from grpc_user.locust.freshness.probe import FreshnessProbe

# The longest visibility assumed before any sample was found (s): the first window samples this long and keeps the
# polls for as long after.
FIRST_TAIL_SECONDS = 2.0
# A window samples at least this long (s): a service that stores within milliseconds still gets a few samples each.
MIN_SAMPLING_SECONDS = 1.0
# The queries kept for the last sweep at the end (``finish_probe``): the ``+ 1`` of the budget.
SWEEP_QUERIES = 1
# Before a second of the test has passed, its call rate is taken over one second.
MIN_RATE_SECONDS = 1.0
# The share limited the samples once the probe went this long (s) without sampling while the test ran: not for the
# moment users take to spawn.
LIMITED_AFTER_SECONDS = 2.0
# The probe samples all the time once its share pays for this many times a poll every interval: a margin for the
# polls that find the samples pending when the test stops, and for a rate that wavers.
CONTINUOUS_MARGIN = 1.25

IDLE, WAITING, SAMPLING = "idle", "waiting", "sampling"


@dataclass
class QueryBudget:
    """The probe's queries, at most ``share`` (a fraction) of the process's ``calls()`` plus one over the whole
    test, the polls after the stop and the last sweep included. ``started`` and ``stopped()``: the test's start and
    stop (``time.time`` s; ``stopped()`` is below ``started`` while it runs)."""

    share: float
    calls: Callable[[], int]
    started: float
    stopped: Callable[[], float] = lambda: 0.0

    @property
    def running(self) -> bool:
        """Whether the test runs (its calls still pay for queries)."""
        return self.stopped() < self.started

    def spendable(self, queries: int) -> int:
        """How many more polls the budget pays for, ``queries`` made so far, the last sweep's kept aside."""
        return math.floor(self.share * self.calls() + 1 - queries + 1e-9) - SWEEP_QUERIES

    def accrual(self, now: float) -> float:
        """Queries per second the calls pay for now (0 once the test stopped)."""
        if not self.running:
            return 0.0
        return self.share * self.calls() / max(now - self.started, MIN_RATE_SECONDS)


@dataclass
class SamplingWindows:
    """Opens and closes the probe's sampling (``FreshnessProbe.open_sampling``); ``interval``: the poll interval
    (s); ``draw()``: a uniform draw in [0, 1) for each window's random start. ``withheld``: the seconds the test ran
    without sampling; ``limited``: whether the share limited the samples (``withheld`` past
    ``LIMITED_AFTER_SECONDS``); ``windows``: how many opened."""

    budget: QueryBudget
    interval: float
    draw: Callable[[], float] = field(default_factory=lambda: random.Random().random)
    state: str = IDLE
    opens_at: float = math.inf
    sampling_for: float = 0.0
    closes_at: float = math.inf
    withheld: float = 0.0
    limited: bool = False
    windows: int = 0
    last_step: float | None = None

    def step(self, probe: FreshnessProbe, now: float, probe_now: float) -> None:
        """Sample or not from ``now`` on; give the samples up to their own turns once their budget is spent."""
        if self.budget.running and not probe.sampling and self.last_step is not None:
            self.withheld += now - self.last_step
            self.limited = self.withheld > LIMITED_AFTER_SECONDS
        self.last_step = now
        polls_per_second = 1.0 / self.interval
        spendable = self.budget.spendable(probe.queries)
        if not self.budget.running:
            self._close(probe)
            if spendable < 1:
                probe.pending.retire_current(probe.give_up_after)
            return
        accrual = self.budget.accrual(now)
        if accrual >= CONTINUOUS_MARGIN * polls_per_second:  # the share pays for every poll: sample at the whole rate
            if not probe.sampling:
                probe.open_sampling()
            self.state, self.closes_at = SAMPLING, math.inf
            return
        known = probe.longest_found or FIRST_TAIL_SECONDS
        oldest = probe.pending.oldest_current()
        if self.state == SAMPLING:
            tail = max(known, probe_now - oldest.acked_at if oldest is not None else 0.0)
            # Its length is set when it opens (a window closed by what it found would skew the flush phases it
            # covers); the budget closes it sooner only if the polls until its samples are visible need the rest.
            if now >= self.closes_at or spendable <= polls_per_second * tail + 1:
                self._close(probe)
        elif oldest is not None:  # the window's samples are still looked for every interval
            if spendable < 1:
                probe.pending.retire_current(probe.give_up_after)
        elif self.state == IDLE:
            sampling_for = max(known, MIN_SAMPLING_SECONDS)
            if spendable >= (polls_per_second - accrual) * sampling_for + polls_per_second * known + 1:
                self.state, self.sampling_for = WAITING, sampling_for
                self.opens_at = now + self.draw() * max(known, self.interval)
        elif now >= self.opens_at:
            probe.open_sampling()
            self.state, self.windows, self.closes_at = SAMPLING, self.windows + 1, now + self.sampling_for

    def _close(self, probe: FreshnessProbe) -> None:
        if probe.sampling:
            probe.close_sampling()
        self.state = IDLE
