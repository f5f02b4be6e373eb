"""When the freshness probe samples, and how often it polls for its samples: all the time while its query share pays
for a poll every poll interval, in sampling windows otherwise, each window's polls paced by what its samples show.

A found sample's figure is late by at most the gap between the last poll that did not return it (or its
acknowledgement) and the poll that did: the figure's bracket; the largest of the run is the stated bound. Above
``CONTINUOUS_MARGIN / (share x interval)`` calls/s (~830 at the defaults) the share (``--freshness-query-share``)
pays for a poll every interval and the probe samples at its whole rate. Below, it alternates: it saves up its share,
waits a random moment (uniform over the longest visibility found so far: a window that opened right after its
previous samples became visible, right after a flush, would sample only the logs acknowledged just after one),
samples at its rate for about that longest visibility (1 to 2 s: a flush period's worth of logs, evenly spread over
the flush phase), polls until those samples are visible, and saves up again.

A window opens as soon as the budget pays for polls a *window gap* apart over its sampling and its funded tail (the
longest visibility found, at most ``FIRST_TAIL_SECONDS``): the poll interval, or up to ``RELATIVE_GAP`` (a tenth) of
the longest visibility found when that is coarser (0.2 s for a 2 s flush; twice that before any sample was found,
``FIRST_FIGURE``) unless the share pays for the poll interval within ``PRECISE_WAIT_SECONDS``; and, when the test's
end is known (``-t``), at the latest moment its window still fits before the end, at the gap the budget then pays
for, however coarse while no sample was found (a short light run gets a figure, its wider bound stated), else no
coarser than the bound already stated. Its samples are polled every window
gap while the youngest still pending is younger than the funded tail; after that (a store slower than the load)
the window gap plus ``RELATIVE_GAP`` times that youngest sample's age past the tail, and never faster than the
budget accrues (a poll waits until the share pays for it): each bracket is then about a tenth of its sample's
visibility, at a cost that grows with the logarithm of the visibility, not with it. After the stop nothing accrues:
the polls go on so while the budget lasts; samples still pending when it is spent are left to the last sweep (with
its wider bracket, stated) or, when the looking was cut short, unknown, never given a coarser figure. One QueryLog
covers every pending sample, so the cost is per poll, not per sample. Times are seconds: ``now`` on the budget's clock
(``time.time``), ``probe_now`` on the probe's (``time.monotonic``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from grpc_user.locust.freshness.pending import RELATIVE_GAP
from grpc_user.locust.freshness.probe import FreshnessProbe

__all__ = ["RELATIVE_GAP", "QueryBudget", "SamplingWindows"]

# The longest visibility assumed before any sample was found (s), and the longest a window samples and polls every
# window gap after it closes: beyond, its samples are polled by their age (``RELATIVE_GAP``).
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
# The last window of a test whose end is known opens this long (s) before it must, to end before the test does.
END_MARGIN_SECONDS = 0.5
# A window opens only with at least this many polls paid for: fewer would bracket nothing.
MIN_WINDOW_POLLS = 3
# A window at the poll interval the share pays for within this long (s) is waited for rather than a coarser one.
PRECISE_WAIT_SECONDS = 10.0
# Before any sample was found, a window opens at up to this many times the relative gap (0.4 s at first): the first
# figure comes early, and says how slow the store is (a window funded at 0.2 s opened only ~12 s into a run of 100
# calls/s, when a slow store's samples took longer to be stored than was left of the run).
FIRST_FIGURE = 2.0

IDLE, WAITING, SAMPLING = "idle", "waiting", "sampling"


@dataclass
class QueryBudget:
    """The probe's queries, at most ``share`` (a fraction) of the process's ``calls()`` plus one over the whole
    test, the polls after the stop and the last sweep included. ``started`` and ``stopped()``: the test's start and
    stop (``time.time`` s; ``stopped()`` is below ``started`` while it runs); ``ends()``: when the test is to end
    (``-t``: ``time.time`` s), infinite when that is not known."""

    share: float
    calls: Callable[[], int]
    started: float
    stopped: Callable[[], float] = lambda: 0.0
    ends: Callable[[], float] = lambda: math.inf

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
    """Opens and closes the probe's sampling (``FreshnessProbe.open_sampling``) and paces its polls (``poll_gap``);
    ``interval``: the poll interval (s); ``draw()``: a uniform draw in [0, 1) for each window's random start.
    ``gap``: the current window's gap between polls (s, at least ``interval``); ``tail``: how long after it closes
    (s) its samples are polled every ``gap`` (infinite while the probe samples all the time); ``withheld``: the
    seconds the test ran without sampling; ``limited``: whether the share limited the samples (``withheld`` past
    ``LIMITED_AFTER_SECONDS``); ``windows``: how many opened."""

    budget: QueryBudget
    interval: float
    draw: Callable[[], float] = field(default_factory=lambda: random.Random().random)
    state: str = IDLE
    opens_at: float = math.inf
    sampling_for: float = 0.0
    closes_at: float = math.inf
    gap: float = 0.0
    tail: float = math.inf
    withheld: float = 0.0
    limited: bool = False
    windows: int = 0
    last_step: float | None = None

    def poll_gap(self, probe: FreshnessProbe, probe_now: float) -> float:
        """How long (s) after the last poll the next may look for the window's samples: the window's gap (before any
        sample was found, no more than the oldest one's age) while the youngest pending one is younger than the tail
        its polls were funded for, then ``RELATIVE_GAP`` times the age it has past that tail more."""
        gap = max(self.gap, self.interval)
        youngest, oldest = probe.pending.youngest_current(), probe.pending.oldest_current()
        if youngest is None or oldest is None:
            return gap
        if not probe.longest_found:  # nothing found yet: look at once, then less often, up to the gap (a fast store)
            gap = max(self.interval, min(gap, probe_now - oldest.acked_at))
        age = probe_now - youngest.acked_at
        return gap if age <= self.tail else gap + RELATIVE_GAP * (age - self.tail)

    def step(self, probe: FreshnessProbe, now: float, probe_now: float) -> None:
        """Sample or not from ``now`` on."""
        if self.budget.running and not probe.sampling and self.last_step is not None:
            self.withheld += now - self.last_step
            self.limited = self.withheld > LIMITED_AFTER_SECONDS
        self.last_step = now
        if not self.budget.running:
            self._close(probe)
            return
        spendable = self.budget.spendable(probe.queries)
        accrual = self.budget.accrual(now)
        if accrual >= CONTINUOUS_MARGIN / self.interval:  # the share pays for every poll: sample at the whole rate
            if not probe.sampling:
                probe.open_sampling()
            self.state, self.closes_at, self.gap, self.tail = SAMPLING, math.inf, self.interval, math.inf
            return
        known = probe.longest_found or FIRST_TAIL_SECONDS
        if self.state == SAMPLING:
            # Its length is set when it opens (a window closed by what it found would skew the flush phases it
            # covers); what its samples show shortens its tail, and its gap with it (never coarser).
            self.tail = min(known, FIRST_TAIL_SECONDS)
            rest = max(self.closes_at - now, 0.0)
            self.gap = max(
                self.interval, min(self.gap, self._affordable_gap(spendable, accrual, rest, rest + self.tail))
            )
            # The budget closes it sooner only if the polls until its samples are visible need the rest.
            if now >= self.closes_at or spendable < self.tail / self.gap:
                self._close(probe)
        elif probe.pending.oldest_current() is not None:  # the window's samples are still looked for
            return
        elif self.state == IDLE and now - self.budget.started >= MIN_RATE_SECONDS:  # the call rate is known
            sampling_for = min(max(known, MIN_SAMPLING_SECONDS), FIRST_TAIL_SECONDS)
            span = sampling_for + min(known, FIRST_TAIL_SECONDS)
            gap = self._affordable_gap(spendable, accrual, sampling_for, span)
            coarsest = RELATIVE_GAP * known * (1.0 if probe.longest_found else FIRST_FIGURE)
            if self._precise_soon(spendable, accrual, sampling_for, span, self.budget.ends() - now):
                coarsest = self.interval
            if gap <= max(self.interval, coarsest):
                self.state, self.sampling_for = WAITING, sampling_for
                latest = self.budget.ends() - span - END_MARGIN_SECONDS  # a random start, still ending before the test
                self.opens_at = max(min(now + self.draw() * max(known, self.interval), latest), now)
            elif self._last_chance(probe, self.budget.ends() - now, span) and gap <= self._stated(probe):
                self.state, self.sampling_for, self.opens_at = WAITING, sampling_for, now  # the last that fits
        elif self.state == WAITING and now >= self.opens_at:
            tail = min(known, FIRST_TAIL_SECONDS)
            gap = self._affordable_gap(spendable, self.budget.accrual(now), self.sampling_for, self.sampling_for + tail)
            probe.open_sampling()
            self.state, self.windows, self.closes_at = SAMPLING, self.windows + 1, now + self.sampling_for
            self.gap, self.tail = max(self.interval, gap), tail

    def _precise_soon(self, spendable: int, accrual: float, sampling_for: float, span: float, left: float) -> bool:
        """Whether the share pays for a window at the poll interval within ``PRECISE_WAIT_SECONDS`` (and before the
        test's end, ``left`` s away): then it is worth the wait (300 calls/s and more at the defaults)."""
        if accrual <= 0:
            return False
        wait = max(span / self.interval + 1 - spendable - accrual * sampling_for, 0.0) / accrual
        return wait <= PRECISE_WAIT_SECONDS and wait + span <= left

    @staticmethod
    def _last_chance(probe: FreshnessProbe, left: float, span: float) -> bool:
        """Whether a window of ``span`` s opened now is the test's last that ends before it (``left`` s to go): a
        later one would poll after the stop, where nothing accrues; while no sample was found, any late one."""
        return left <= span + END_MARGIN_SECONDS and (left >= span or not probe.longest_found)

    @staticmethod
    def _stated(probe: FreshnessProbe) -> float:
        """The coarsest gap a test's last window may have: any while no sample was found (a figure with its bound
        stated is better than none), else no coarser than the largest bracket so far (it would widen the bound)."""
        return probe.max_poll_gap if probe.max_poll_gap > 0 else math.inf

    @staticmethod
    def _affordable_gap(spendable: int, accrual: float, sampling_for: float, span: float) -> float:
        """The shortest gap (s) between polls over ``span`` s that the budget pays for: what is saved and what
        accrues while the window samples, the first poll's kept aside (infinite below ``MIN_WINDOW_POLLS``)."""
        polls = spendable + accrual * sampling_for - 1
        return span / polls if polls >= MIN_WINDOW_POLLS else math.inf

    def _close(self, probe: FreshnessProbe) -> None:
        if probe.sampling:
            probe.close_sampling()
        self.state = IDLE
