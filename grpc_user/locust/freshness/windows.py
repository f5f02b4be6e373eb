"""When the freshness probe samples, and how often it polls for its samples: all the time while its query share pays
for a poll every poll interval, in sampling windows otherwise, after learning the store's pace.

A found sample's figure is late by at most the gap between the last poll that did not return it (or its
acknowledgement) and the poll that did: the figure's bracket; the largest of the run is the stated bound. Above
``CONTINUOUS_MARGIN / (share x interval)`` calls/s (~830 at the defaults) the share (``--freshness-query-share``)
pays for a poll every interval and the probe samples at its whole rate. Below, it alternates: it saves up its share,
waits a random moment (uniform over the longest visibility found so far: a window that opened right after its
previous samples became visible, right after a flush, would sample only the logs acknowledged just after one),
samples at its rate for about that longest visibility (1 to 2 s: a flush period's worth of logs, evenly spread over
the flush phase), polls until those samples are visible, and saves up again.

First it learns the store's pace from single samples, never counted (``LEARNING``; held back and dropped,
``FreshnessProbe.held_back``), each looked for once at ``LEARN_AGE_SECONDS``, 2, 4, 8 and 16 s into the test (a
store slower than the load keeps up at first) until a window opens:

- A store that keeps up (``FINE``; a sample found within 2 s): a window opens only when the share pays for polls
  every poll interval over its sampling and its funded tail (the longest visibility found, at most
  ``FIRST_TAIL_SECONDS``), counting what accrues until it ends when the test's end is known (``-t``; at 100 calls/s
  ~24 s in: a 30 s run gets one window, its figures within ~0.1 s). A test too short for that gets its last window
  that fits at the gap the share then pays for, counted, its bound stated (no finer one can follow). Without a known
  end (a web UI test without a run time; workers know ``-t``: ``run.test_end``) one coarser window opens as soon as
  the share pays for it, its samples held back: counted at the end only if no finer window counted any (a short
  run), else dropped. Whole
  windows are held back or dropped, never single samples by their own bracket (that would favour the slow ones).
- A store slower than the load (``PACED``; a learning sample not found at 2 s): windows open as soon as the share
  pays for polls a *window gap* apart: the poll interval, or up to ``RELATIVE_GAP`` (a tenth) of the longest
  visibility found when that is coarser (twice that before any sample was found, ``FIRST_FIGURE``) unless the share
  pays for the poll interval within ``PRECISE_WAIT_SECONDS``; and, with a known end, at the latest moment its window
  still fits before it, no coarser than the bound already stated once a sample was found. A window whose samples
  would be visible only after the test (``_reach``: the longest visibility found, grown with the time into the test)
  opens only if what is saved pays for their polls until then (``_pays_after_stop``): after the stop nothing accrues.

A window's samples are polled every window gap while the youngest still pending is younger than the funded tail;
after that (a store slower than the load) the window gap plus ``RELATIVE_GAP`` times that youngest sample's age past
the tail, and never faster than the budget accrues (a poll waits until the share pays for it): each bracket is then
about a tenth of its sample's visibility, at a cost that grows with the logarithm of the visibility, not with it.
After the stop nothing accrues: the polls go on so while the budget lasts; samples still pending when it is spent
are left to the last sweep (with its wider bracket, stated) or, when the looking was cut short, unknown, never given
a coarser figure. One QueryLog covers every pending sample, so the cost is per poll, not per sample. Times are
seconds: ``now`` on the budget's clock (``time.time``), ``probe_now`` on the probe's (``time.monotonic``).
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
# The first sample (or the few of one burst of calls) learns the store's pace: looked for once, this old (s). Found,
# the store keeps up within a window's funded tail: windows at the poll interval. Not found, it is slower: windows
# paced by what their samples show. Its own figure (bracketed by 2 s) is never counted.
LEARN_AGE_SECONDS = FIRST_TAIL_SECONDS
# A store slower than the load keeps up at first (at --store-rate 60 of 100 calls/s a log queued at 1 s is visible
# at 1.67 s): while the store keeps up, a learning sample is taken again at these seconds into the test and twice
# as far each time (2, 4, 8, 16: a query each), until a window at the poll interval opens.
LEARN_FIRST_AT_SECONDS = 2.0

IDLE, LEARNING, WAITING, SAMPLING = "idle", "learning", "waiting", "sampling"
# The store's pace as learnt: it keeps up (FINE: windows at the poll interval) or not (PACED: as coarse as the share
# pays for, a tenth of their samples' visibility).
FINE, PACED = "fine", "paced"


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
    pace: str | None = None
    learn_at: float = LEARN_FIRST_AT_SECONDS
    learning_from: int = 0
    holds: bool = False
    held_window: bool = False

    def poll_gap(self, probe: FreshnessProbe, probe_now: float) -> float:
        """How long (s) after the last poll the next may look for the window's samples: the window's gap (before any
        sample was found, no more than the oldest one's age) while the youngest pending one is younger than the tail
        its polls were funded for, then ``RELATIVE_GAP`` times the age it has past that tail more."""
        gap = max(self.gap, self.interval)
        youngest, oldest = probe.pending.youngest_current(), probe.pending.oldest_current()
        if youngest is None or oldest is None:
            return gap
        if self.state == LEARNING:  # one look, once the sample is as old as a window's funded tail
            return self.interval if probe_now - oldest.acked_at >= LEARN_AGE_SECONDS else math.inf
        if not (
            probe.longest_found or probe.held_longest
        ):  # nothing found yet: look at once, then less often, up to the gap (a fast store)
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
            if self.state == LEARNING:
                self._close(probe)
            if not probe.sampling:
                probe.open_sampling()
            self.state, self.closes_at, self.gap, self.tail = SAMPLING, math.inf, self.interval, math.inf
            return
        known = probe.longest_found or probe.held_longest or FIRST_TAIL_SECONDS
        left = self.budget.ends() - now
        if self.state == LEARNING:
            self._learn(probe)
        elif self.state == SAMPLING:
            # Its length is set when it opens (a window closed by what it found would skew the flush phases it
            # covers); what its samples show shortens its tail, and its gap with it (never coarser).
            self.tail = min(known, FIRST_TAIL_SECONDS)
            rest = max(self.closes_at - now, 0.0)
            self.gap = max(
                self.interval, min(self.gap, self._affordable_gap(spendable, accrual, rest, rest + self.tail))
            )
            # The budget closes it sooner only if the polls until its samples are visible need the rest (what accrues
            # over the tail counted when the test's end is known to come after it).
            tail_accrual = accrual * max(min(self.tail, left - rest), 0.0) if self._accrues_after(left) else 0.0
            if now >= self.closes_at or spendable + tail_accrual < self.tail / self.gap:
                self._close(probe)
        elif probe.pending.oldest_current() is not None:  # the window's samples are still looked for
            return
        elif self.state == IDLE and now - self.budget.started >= MIN_RATE_SECONDS:  # the call rate is known
            sampling_for = min(max(known, MIN_SAMPLING_SECONDS), FIRST_TAIL_SECONDS)
            span = sampling_for + min(known, FIRST_TAIL_SECONDS)
            if self.pace == FINE and self._fine_window(probe, now, spendable, accrual, sampling_for, span, known):
                return
            if self.pace != PACED:  # not learnt yet, or it kept up so far
                elapsed = now - self.budget.started
                if elapsed >= self.learn_at and spendable >= 1:  # learn the store's pace from one sample
                    probe.holding, self.state, self.learn_at = True, LEARNING, 2 * elapsed
                    self.learning_from = len(probe.held)
                    probe.open_sampling()
                return
            gap = self._affordable_gap(spendable, accrual, sampling_for, span)
            reach = self._reach(probe, now, probe_now, sampling_for, span)
            if left < reach + END_MARGIN_SECONDS and not self._pays_after_stop(spendable, accrual, left, gap, reach,
                                                                                 sampling_for):  # fmt: skip
                return
            coarsest = RELATIVE_GAP * known * (1.0 if probe.longest_found else FIRST_FIGURE)
            if self._precise_soon(spendable, accrual, sampling_for, span, self.budget.ends() - now):
                coarsest = self.interval
            if gap <= max(self.interval, coarsest):
                self.state, self.sampling_for = WAITING, sampling_for
                self.opens_at = self._random_start(now, known, max(span, reach))
            elif self._last_chance(probe, self.budget.ends() - now, span) and gap <= self._stated(probe):
                self.state, self.sampling_for, self.opens_at = WAITING, sampling_for, now  # the last that fits
        elif self.state == WAITING and now >= self.opens_at:
            tail = min(known, FIRST_TAIL_SECONDS)
            span = self.sampling_for + tail
            funded = min(span, left) if self._accrues_after(left) else self.sampling_for
            gap = self._affordable_gap(spendable, self.budget.accrual(now), funded, span)
            probe.holding = self.holds
            probe.open_sampling()
            self.state, self.windows, self.closes_at = SAMPLING, self.windows + 1, now + self.sampling_for
            self.gap, self.tail = max(self.interval, gap), tail

    def _reach(self, probe: FreshnessProbe, now: float, probe_now: float, sampling_for: float, span: float) -> float:
        """How long (s) after it opens a slow store's window's samples are expected to be visible: its sampling and the
        longest visibility found, grown as it did with the time into the test its sample was acknowledged (a
        backlog); ``span`` before any sample was found."""
        if not probe.longest_found:
            return span
        acked_into_test = now - self.budget.started - (probe_now - probe.longest_found_at)
        growth = probe.longest_found / max(acked_into_test, MIN_RATE_SECONDS)
        return sampling_for + max(probe.longest_found, growth * (now + sampling_for - self.budget.started))

    def _pays_after_stop(self, spendable: int, accrual: float, left: float, gap: float, reach: float,
                         sampling_for: float) -> bool:  # fmt: skip
        """Whether a window whose samples become visible only after the test (``reach`` s from now, ``left`` s to
        its end) is paid for until then by what is saved and what accrues until the end: its polls a ``gap`` apart
        over its sampling and funded tail, then a tenth of their age apart (after the stop nothing accrues: a window
        at 25 s of 30 s at --store-rate 60 had its samples settled by the last sweep, late by 18 s)."""
        if math.isinf(gap):
            return False
        tail = FIRST_TAIL_SECONDS
        aged = math.log((gap + RELATIVE_GAP * max(reach - sampling_for - tail, 0.0)) / gap) / RELATIVE_GAP
        return spendable + accrual * max(min(left, reach), 0.0) >= (sampling_for + tail) / gap + aged + SWEEP_QUERIES

    def _learn(self, probe: FreshnessProbe) -> None:
        """The learning sample: one is enough (sampling closes once one was acknowledged); found, the store keeps up
        (``FINE``); looked for at ``LEARN_AGE_SECONDS`` without being found, it is slower (``PACED``). Then dropped."""
        learning = probe.held[self.learning_from :]
        if probe.sampling and learning:
            probe.close_sampling()
        if any(not sample.pending for sample in learning):
            self.pace = FINE
        elif any(s.pending and s.last_look - s.acked_at >= LEARN_AGE_SECONDS for s in learning):
            self.pace = PACED
        else:
            return
        self._close(probe)

    def _fine_window(self, probe: FreshnessProbe, now: float, spendable: int, accrual: float, sampling_for: float,
                     span: float, known: float) -> bool:  # fmt: skip
        """A store that keeps up: the next window waits until the share pays for polls every poll interval over it
        (at 100 calls/s ~24 s into a test, counting what accrues until it ends before the test does). Else, a test
        of known length (``-t``) too short for that gets its last window that fits at the gap the share then pays
        for, counted (no finer one can follow); without a known end, one coarse window opens as soon as the share
        pays for it, its samples held back, counted only if no finer window counted any (``settle_held``). Returns
        whether one will open."""
        left = self.budget.ends() - now
        funded = min(span, left) if self._accrues_after(left) else sampling_for
        gap = self._affordable_gap(spendable, accrual, funded, span)
        if gap <= self.interval * (1 + 1e-9):
            self.state, self.sampling_for, self.holds = WAITING, sampling_for, False
            self.opens_at = self._random_start(now, known, span)
        elif self._last_chance(probe, left, span) and gap <= self._stated(probe):
            self.state, self.sampling_for, self.holds, self.opens_at = WAITING, sampling_for, False, now
        elif math.isinf(left) and not self.held_window and gap <= RELATIVE_GAP * known * FIRST_FIGURE:
            self.state, self.sampling_for, self.holds, self.held_window = WAITING, sampling_for, True, True
            self.opens_at = self._random_start(now, known, span)  # no known end: nothing to end before
        else:
            return False
        return True

    def _random_start(self, now: float, known: float, lasts: float) -> float:
        """When a window that lasts ``lasts`` s opens: at a random moment within ``known`` s (the longest visibility
        found, at least the poll interval) from ``now``, so that windows do not follow the flush phase, but not so
        late that it would end after the test (never before ``now``)."""
        latest = self.budget.ends() - lasts - END_MARGIN_SECONDS
        return max(min(now + self.draw() * max(known, self.interval), latest), now)

    def _accrues_after(self, left: float) -> bool:
        """Whether what the share accrues while a window's polls go on is counted in advance: the store keeps up
        and the test's end is known (``left`` s away), so a window that ends before it is paid by the calls until
        then; without a known end only what is saved and what accrues while it samples."""
        return self.pace == FINE and not math.isinf(left)

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
        if self.state == LEARNING:  # the learning samples are never counted
            probe.drop_held(self.learning_from)
        probe.holding, self.state = False, IDLE
