"""When the freshness probe samples, and how often it polls for its samples: all the time while its query share pays
for a poll every poll interval, in sampling windows otherwise, after learning the store's pace and flush cycle.

A found sample's figure is late by at most the gap between the last poll that did not return it (or its
acknowledgement) and the poll that did: the figure's bracket; the largest of the run is the stated bound. Above
``CONTINUOUS_MARGIN / (share x interval)`` calls/s (~830 at the defaults; it stays so down to 1 / (share x
interval), so that a rate about the margin does not switch back and forth) the share (``--freshness-query-share``)
pays for a poll every interval and the probe samples at its whole rate, as long as what is saved and what accrues
until the test's known end still pays for following a sample taken now until it is visible after the stop, where
nothing accrues (``_keeps_reserve``: its visibility is the longest found, the oldest pending sample's age, or a
backlog's growth carried to now). When it no longer does, sampling stops for good (``reserved_at``: the reserve,
not the share's rate, stopped it) and the samples taken are polled the poll interval plus a tenth of the youngest
one's age apart.
Below that rate it alternates: it saves up its share, waits a random moment (uniform over the longest visibility
found so far), samples at its rate for at least that longest visibility, polls until those samples are visible, and
saves up again.

First it learns the store's pace and its flush cycle from samples taken at the probe's rate and held back, never
counted (``LEARNING``, from ``LEARN_FIRST_AT_SECONDS``; ``FreshnessProbe.held_back``), polled coarsely
(``LEARN_RELATIVE_GAP`` of the time it ran, 0.5 to 1.5 s apart) until the store was seen storing twice. What is
learnt is read from the samples' calls, not from the polls' times: the latest sent sample each of two polls a flush
apart found marks a flush (its log was queued after it was sent and before the flush), so their difference is the
flush cycle to the sample spacing (a store at work all the time: its progress between two polls), whatever the
polls' gap. A sample is of a later flush only if a poll sent after the first flush was seen missed it: one found at
its first look may have been stored by that flush and acknowledged to a busy client late. (From the
acknowledgements, a 2 s flush was learnt as 442, 534 and 853 ms on a busy machine: late ones of the first flush
were taken for the next.)

- A store that keeps up (``FINE``; the first poll that found samples found one acknowledged within
  ``LEARN_LAG_SECONDS`` of the poll before it: a flush stores the logs queued just before it). Its windows sample
  for the whole cycle (the longest visibility found, uncapped: every flush phase is sampled once, evenly, whatever
  the window's start) and poll every window gap for a cycle after it. A window opens only when the share pays for
  polls every poll interval over its sampling and that tail, counting what accrues until it ends when the test's
  end is known (``-t``; a 2 s flush at 100 calls/s ~24 s in: a 30 s run gets one window, its figures within
  ~0.11 s). A test too short for that gets its last window that fits at the gap the share then pays for, counted,
  its bound stated (a 6 s flush at 100 calls/s in 30 s: ~0.37 s, about a sixteenth of the cycle). The learning's
  samples of one whole cycle stay held back: counted at the end only if no window counted any (a short run, or one
  without a known end, a web UI test without a run time: polls up to ``LEARN_MAX_GAP_SECONDS`` apart; workers know
  ``-t``: ``run.known_end``), else dropped.
  While no window opened and one still fits after it, the store is checked again at twice the time into the test
  the last learning started (a store slower than the load keeps up at first): one sample looked for once at
  ``_recheck_age`` (a quarter more than the cycle); not found, the store is slower. Whole windows are held back or
  dropped, never single samples by their own bracket (that would favour the slow ones).
- A store slower than the load (``PACED``; the first stored samples were all older, or none was stored within
  ``LEARN_PATIENCE_SECONDS``: a flush period longer than that is measured as a backlog is, and the learning's samples,
  all pending, are its first window, counted: a service that died while it learnt had them dropped, no figure and
  no word of them): windows sample for up to
  ``FIRST_TAIL_SECONDS`` and open as soon as the share pays for polls a *window gap* apart: the poll interval, or up
  to ``RELATIVE_GAP`` (a tenth) of the longest visibility found when that is coarser (twice that before any sample
  was found, ``FIRST_FIGURE``) unless the share pays for the poll interval within ``PRECISE_WAIT_SECONDS``; and, with
  a known end, at the latest moment its window still fits before it, no coarser than the bound already stated once a
  sample was found; the window gap may be a tenth of the visibility its samples are expected to have (``_reach``).
  Once a sample was found, the next window may open while an earlier one's samples are pending (one QueryLog covers
  them all), a window's span after the last opened: windows come through the run, not one per visibility. A backlog
  stores in order: none is visible before the oldest pending sample, so its polls come the poll interval plus a
  tenth of that one's age apart, at least a tenth of its expected visibility (``_expected``: the longest found, grown
  with the time into the test), and one chain of polls follows every window's samples. A window whose samples would
  be visible only after the test (``_reach``) opens only if what is saved pays for that chain with it until then
  (``_pays_after_stop``, ``_chain``): after the stop nothing accrues. After the stop the chain's polls may come up
  to ``MAX_RELATIVE_GAP`` of the age apart when what is saved cannot pay for a tenth (``_stretched``; the brackets
  are measured, the largest stated): at --store-rate 40 and 60 of 100 calls/s in 30 s the counted samples reach the
  run's last seconds (before, none after ~18 s: each late window was charged as if alone).
- With workers the test learns once (``SharedLearning``, ``freshness.learnt``): the first worker learns (and
  rechecks) as above and tells the others through the master; they spend no query on learning, and save their share
  for their windows (one told nothing ``TOLD_WITHIN_SECONDS`` after learning would start learns itself). The
  learner's last window that fits of a store that keeps up, when coarser than a fifth of the cycle, is held back: the
  master counts it only if no worker counted any (at 100 calls/s, 12 s: it widened the other's ~0.6 s bound to ~1.3
  s; in 30 s it is ~0.29 s and counts).

A window's samples are polled every window gap while the youngest still pending is younger than the funded tail;
after that the window gap plus ``RELATIVE_GAP`` times that youngest sample's age past the tail (a store slower than
the load: by the oldest pending one, above), and never faster than the budget accrues (a poll waits until the share
pays for it): each bracket is then about a tenth of its sample's visibility, at a cost that grows with the logarithm
of the visibility, not with it.
After the stop nothing accrues: the polls go on so while the budget lasts. A sample the last sweep finds with a
bracket wider than the bound stated is unknown, with the reason (``FreshnessProbe.observe``), never a coarser figure;
one still pending at the end is never visible after a settled audit, else unknown. One QueryLog covers every pending
sample, so the cost is per poll, not per sample. Times are seconds: ``now`` on the budget's clock (``time.time``),
``probe_now`` on the probe's (``time.monotonic``).
"""

from __future__ import annotations

import logging
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from grpc_user.locust.freshness.pending import RELATIVE_GAP
from grpc_user.locust.freshness.probe import FreshnessProbe, Sample
from grpc_user.run_files.freshness_words import SAMPLED_FROM_SECONDS

__all__ = ["RELATIVE_GAP", "QueryBudget", "SamplingWindows", "SharedLearning"]

logger = logging.getLogger(__name__)

# The longest visibility assumed before any sample was found (s), and the longest a window samples and polls every
# window gap after it closes: beyond, its samples are polled by their age (``RELATIVE_GAP``).
FIRST_TAIL_SECONDS = 2.0
# A window samples at least this long (s): a service that stores within milliseconds still gets a few samples each.
MIN_SAMPLING_SECONDS = 1.0
# After the stop, the polls of a store slower than the load may come up to this fraction of the oldest pending
# sample's age apart when the share saved cannot follow the pending samples at RELATIVE_GAP (``_stretched``).
MAX_RELATIVE_GAP = 0.2
# A window not yet opened is charged as this many samples spread over its sampling (``_pays_after_stop``).
WINDOW_POINTS = 20
# The queries kept for the last sweep at the end (``finish_probe``): the ``+ 1`` of the budget.
SWEEP_QUERIES = 1
# Before a second of the test has passed, its call rate is taken over one second.
MIN_RATE_SECONDS = 1.0
# The call rate is taken over the last this many seconds once the test ran so long (before, since the test's start: a
# slow first second at ~1,000 calls/s kept the average below the continuous margin for seconds).
RATE_SECONDS = 2.0
# A mark of the calls made is kept this often (s) for the rate over the last RATE_SECONDS.
RATE_MARK_SECONDS = 0.1
# The share limited the samples once the probe went this long (s) without sampling while the test ran, from
# LEARN_FIRST_AT_SECONDS on (before, it does not sample by design: the rate and the store's pace are not known; a run
# whose rate crossed the continuous margin only ~2.5 s in, after a slow first second, was said limited by the share),
# and only while the share was what kept it from sampling (``_share_withholds``: not its learning, nor a service that
# acknowledges nothing).
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
# Learning samples (held back, never counted) are taken at the probe's rate until the store was seen storing twice:
# the last log it stored each time (by acknowledgement) marks the moment of a flush, so two of them give the flush
# cycle to the sample spacing whatever the polls' gap. A store that stored a log within this long (s; the lower end
# of its bracket: a flush stores the logs queued just before it, ~0 s) keeps up (FINE); one whose first stored logs
# were all older is slower than the load (PACED).
LEARN_LAG_SECONDS = 1.0
# The learning polls come this many times the time learning has run apart, within these bounds (s): about 7 polls
# find a 2 s cycle, 12 a 6 s one; their gap does not change what is learnt, only how soon.
LEARN_RELATIVE_GAP = 0.5
LEARN_MIN_GAP_SECONDS = 0.5
LEARN_MAX_GAP_SECONDS = 1.5
# A window of a store that keeps up samples the fewest whole cycles that make FIRST_TAIL_SECONDS, less this many
# cycles: a 2 s flush learnt as 1.98 s samples one cycle, not two.
CYCLE_SLACK = 0.1
# Learning that found no stored log for this long (s) takes the store for one slower than the load: a flush period
# longer than this is measured as a backlog is.
LEARN_PATIENCE_SECONDS = 10.0
# A store slower than the load keeps up at first (at --store-rate 60 of 100 calls/s a log queued at 1 s is visible
# at 1.67 s): learning starts this many seconds into the test, and while the store keeps up and no window opened,
# it is checked again twice as long into the test as the last learning started.
LEARN_FIRST_AT_SECONDS = SAMPLED_FROM_SECONDS
# A worker that does not learn for the test learns itself when it was told nothing this long (s) after
# LEARN_FIRST_AT_SECONDS (the learning worker lost or slow: a learning ends within about twice LEARN_PATIENCE_SECONDS).
TOLD_WITHIN_SECONDS = 2 * LEARN_PATIENCE_SECONDS

IDLE, LEARNING, WAITING, SAMPLING = "idle", "learning", "waiting", "sampling"
# The store's pace as learnt: it keeps up (FINE: windows at the poll interval) or not (PACED: as coarse as the share
# pays for, a tenth of their samples' visibility).
FINE, PACED = "fine", "paced"


def _stored_to(at: float, found: list[tuple[float, float, float, float]]) -> float:
    """Up to when (s, monotonic) the store had stored the samples' logs when a poll sent ``at`` (s) looked: the
    latest sent of the samples ``found`` (found at, acknowledged at, surely not visible for, sent at) by then. A log
    is queued after its call is sent: however late its acknowledgement came, that flush was after it."""
    return max(sent for seen, _, _, sent in found if seen <= at + 1e-6)


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
    _marks: deque[tuple[float, int]] = field(default_factory=deque, repr=False)  # (time.time s, calls made)

    @property
    def running(self) -> bool:
        """Whether the test runs (its calls still pay for queries)."""
        return self.stopped() < self.started

    def spendable(self, queries: int) -> int:
        """How many more polls the budget pays for, ``queries`` made so far, the last sweep's kept aside."""
        return math.floor(self.share * self.calls() + 1 - queries + 1e-9) - SWEEP_QUERIES

    def accrual(self, now: float) -> float:
        """Queries per second the calls pay for now (0 once the test stopped): at the call rate of the last
        ``RATE_SECONDS`` (since the start, over at least ``MIN_RATE_SECONDS``, until it has been marked so long)."""
        if not self.running:
            return 0.0
        calls, marks = self.calls(), self._marks
        if not marks or now - marks[-1][0] >= RATE_MARK_SECONDS:
            marks.append((now, calls))
        while len(marks) > 1 and now - marks[1][0] >= RATE_SECONDS:
            marks.popleft()
        since, then = marks[0]
        if now - since >= RATE_SECONDS:
            return self.share * (calls - then) / (now - since)
        return self.share * calls / max(now - self.started, MIN_RATE_SECONDS)


@dataclass
class SharedLearning:
    """A distributed test learns the store's pace once: ``learns``, whether this worker learns for it (and rechecks
    it); ``tell(pace, cycle)`` sends what it learnt (cycle in s) for every worker; ``told()``, what a worker learnt
    as relayed to this one (None before; ``freshness.learnt``)."""

    learns: bool
    told: Callable[[], tuple[str, float] | None]
    tell: Callable[[str, float], None]


@dataclass
class SamplingWindows:
    """Opens and closes the probe's sampling (``FreshnessProbe.open_sampling``) and paces its polls (``poll_gap``);
    ``interval``: the poll interval (s); ``draw()``: a uniform draw in [0, 1) for each window's random start.
    ``gap``: the current window's gap between polls (s, at least ``interval``); ``tail``: how long after it closes
    (s) its samples are polled every ``gap`` (infinite while the probe samples all the time); ``withheld``: the
    seconds the test ran without sampling because of the share (``_share_withholds``); ``limited``: whether the
    share's rate limited the samples (``withheld`` past ``LIMITED_AFTER_SECONDS``, in windows); ``reserved``,
    ``reserved_at``: whether, and how many seconds into the
    test, sampling all the time stopped for good to keep the rest of the share for its samples after the stop (not
    ``limited``: the share paid for sampling at the whole rate); ``windows``: how many opened; ``precise_at``: when
    (s into the test) the share is expected to pay for the first window at the poll interval of a store that keeps
    up, as last reckoned at the call rate then (infinite before that is known; with a known end, when none fits
    before it, when the last that fits opens, at the gap the share then pays for), and once the first counted window
    opened (``precise_opened``; or sampling all the time), when it did; ``shared``: a worker's learning shared
    with the others (None: it learns alone); ``after_stop``: how long (s) the samples are looked for after the stop at
    most (``--audit-timeout``): a window whose samples would be visible later does not open; ``relative``: the
    fraction of the oldest pending sample's age a slow store's polls come apart (``RELATIVE_GAP``, coarser after the
    stop when the share saved needs it); ``probe_started``: the test's start on the probe's clock (s)."""

    budget: QueryBudget
    interval: float
    draw: Callable[[], float] = field(default_factory=lambda: random.Random().random)
    shared: SharedLearning | None = None
    after_stop: float = math.inf
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
    cycle: float = 0.0
    learn_started: float = 0.0
    reserved: bool = False
    reserved_at: float | None = None
    precise_at: float = math.inf
    precise_opened: bool = False
    continuous: bool = False
    opened_at: float = -math.inf
    spacing: float = 0.0
    relative: float = RELATIVE_GAP
    probe_started: float = 0.0

    def poll_gap(self, probe: FreshnessProbe, probe_now: float) -> float:
        """How long (s) after the last poll the next may look for the window's samples: the window's gap (before any
        sample was found, no more than the oldest one's age) while the youngest pending one is younger than the tail
        its polls were funded for, then ``RELATIVE_GAP`` times the age it has past that tail more. A store slower
        than the load: the poll interval plus ``relative`` times the oldest pending one's age, at least ``relative``
        times its expected visibility (before any sample was found, at least the window's gap)."""
        gap = max(self.gap, self.interval)
        youngest, oldest = probe.pending.youngest_current(), probe.pending.oldest_current()
        if youngest is None or oldest is None:
            return gap
        if self.state == LEARNING and self.cycle:  # a check that it still keeps up: one look, a cycle and more on
            return self.interval if probe_now - oldest.acked_at >= self._recheck_age() else math.inf
        if self.state == LEARNING:  # coarse: what is learnt is read from the acknowledgements, not the polls' times
            ran = probe_now - self.learn_started
            return max(self.interval, min(max(LEARN_MIN_GAP_SECONDS, LEARN_RELATIVE_GAP * ran), LEARN_MAX_GAP_SECONDS))
        if not (
            probe.longest_found or probe.held_longest
        ):  # nothing found yet: look at once, then less often, up to the gap (a fast store)
            gap = max(self.interval, min(gap, probe_now - oldest.acked_at))
        if self.pace == PACED:  # a backlog stores in order: none is visible before the oldest pending one
            age = probe_now - oldest.acked_at
            if not probe.longest_found:
                return max(gap, self.interval + self.relative * age)
            return max(self.interval + self.relative * age, self.relative * self._expected(probe, oldest.acked_at))
        age = probe_now - youngest.acked_at
        return gap if age <= self.tail else gap + RELATIVE_GAP * (age - self.tail)

    def step(self, probe: FreshnessProbe, now: float, probe_now: float) -> None:
        """Sample or not from ``now`` on."""
        self.probe_started = probe_now - (now - self.budget.started)  # the test's start on the probe's clock
        learnt = now - self.budget.started >= LEARN_FIRST_AT_SECONDS  # before, it does not sample by design
        # Not sampling for the reserve is not the share's rate limiting the samples (``reserved_at`` says it)
        kept = self.reserved and self.continuous
        if self.budget.running and not probe.sampling and self.last_step is not None and learnt and not kept:
            if self._share_withholds(probe):
                self.withheld += now - max(self.last_step, self.budget.started + LEARN_FIRST_AT_SECONDS)
            self.limited = self.limited or self.withheld > LIMITED_AFTER_SECONDS
        self.last_step = now
        if not self.budget.running:  # a learning the stop cut short keeps its samples held: counted if no window was
            self._close(probe, keep=lambda sample: True)  # (settle_held; a 30 s flush in 5 s dropped them all)
            self.tail = 0.0 if math.isinf(self.tail) else self.tail  # after the stop, samples taken all the time age
            if self.pace == PACED:
                self.relative = self._stretched(probe, probe_now)
            return
        spendable = self.budget.spendable(probe.queries)
        accrual = self.budget.accrual(now)
        left = self.budget.ends() - now
        # The share pays for every poll: sample at the whole rate (until it pays for less than every poll: a rate
        # that wavers about the margin does not switch back and forth)
        self.continuous = accrual >= (1.0 if self.continuous else CONTINUOUS_MARGIN) / self.interval
        if self.continuous:
            if self.state == LEARNING:
                self._close(probe)
            if not self.reserved and not self._keeps_reserve(probe, now, probe_now, spendable, accrual, left):
                # the samples taken need the rest after the stop (it only grows)
                self.reserved, self.reserved_at = True, now - self.budget.started
            if self.reserved:  # and their polls a tenth of the youngest one's age apart
                if probe.sampling:
                    probe.close_sampling()
                self.state, self.closes_at, self.gap, self.tail = SAMPLING, now, self.interval, 0.0
                return
            if not probe.sampling:
                probe.open_sampling()
                self._precise_opens(now)
            self.state, self.closes_at, self.gap, self.tail = SAMPLING, math.inf, self.interval, math.inf
            return
        if self.state == IDLE:
            self._take_told()
        if self.pace == PACED:  # a store slower than the load: its windows open sooner, at a coarser gap
            self.precise_at = math.inf
        known = probe.longest_found or self.cycle or probe.held_longest or FIRST_TAIL_SECONDS
        if self.state == LEARNING:
            self._learn(probe, now, probe_now)
            if self.state != LEARNING and self.pace is not None:
                logger.debug("freshness: learnt %.1f s into the test: %s, cycle %.3f s, %d queries made",
                             now - self.budget.started, self.pace, self.cycle, probe.queries)  # fmt: skip
                if self.shared is not None:
                    self.shared.tell(self.pace, self.cycle)
        elif self.state == SAMPLING:
            # Its length is set when it opens (a window closed by what it found would skew the flush phases it
            # covers); what its samples show shortens its tail, and its gap with it (never coarser).
            self.tail = self._tail(known)
            rest = max(self.closes_at - now, 0.0)
            affordable = self._affordable_gap(spendable, accrual, rest, rest + self.tail)
            self.gap = max(self.interval, min(self.gap, affordable))
            # The budget closes it sooner only if the polls until its samples are visible need the rest (what accrues
            # over the tail counted when the test's end is known to come after it).
            tail_accrual = accrual * max(min(self.tail, left - rest), 0.0) if self._accrues_after(left) else 0.0
            if now >= self.closes_at or spendable + tail_accrual < self.tail / self.gap:
                self._close(probe)
        elif probe.pending.oldest_current() is not None and not self._paced_overlap(probe, now):
            return  # the window's samples are still looked for
        elif self.state == IDLE and now - self.budget.started >= MIN_RATE_SECONDS:  # the call rate is known
            sampling_for = self._sampling_for(known)
            span = sampling_for + self._tail(known)
            if self.pace == FINE and self._fine_window(probe, now, spendable, accrual, sampling_for, span, known):
                return
            if self.pace != PACED:  # not learnt yet, or it kept up so far
                elapsed = now - self.budget.started
                if self._waits_to_be_told(elapsed):
                    return
                recheck = self.pace is None or left > self._recheck_age() + span + END_MARGIN_SECONDS
                if elapsed >= self.learn_at and spendable >= 1 and recheck:
                    probe.holding, self.state, self.learn_started, self.learn_at = (
                        True,
                        LEARNING,
                        probe_now,
                        2 * elapsed,
                    )
                    self.learning_from = len(probe.held)
                    probe.open_sampling()
                return
            gap = self._affordable_gap(spendable, accrual, sampling_for, span)
            reach = self._reach(probe, now, probe_now, sampling_for, span)
            if left < reach + END_MARGIN_SECONDS and (
                reach - left > self.after_stop
                or not self._pays_after_stop(probe, probe_now, spendable, accrual, left, gap, reach, sampling_for)
            ):
                return
            # A tenth of the visibility its samples are expected to have: the longest found, or grown as a backlog
            expected = max(known, reach - sampling_for)
            coarsest = RELATIVE_GAP * expected * (1.0 if probe.longest_found else FIRST_FIGURE)
            if self._precise_soon(spendable, accrual, sampling_for, span, self.budget.ends() - now):
                coarsest = self.interval
            if gap <= max(self.interval, coarsest):
                self.state, self.sampling_for = WAITING, sampling_for
                self.opens_at = self._random_start(now, known, max(span, reach))
            elif self._last_chance(probe, self.budget.ends() - now, span) and gap <= self._stated(probe):
                self.state, self.sampling_for, self.opens_at = WAITING, sampling_for, now  # the last that fits
        elif self.state == WAITING and now >= self.opens_at:
            tail = self._tail(known)
            span = self.sampling_for + tail
            funded = min(span, left) if self._accrues_after(left) else self.sampling_for
            gap = self._affordable_gap(spendable, self.budget.accrual(now), funded, span)
            probe.holding = self.holds
            probe.open_sampling()
            if not self.holds:
                self._precise_opens(now)
            self.state, self.windows, self.closes_at = SAMPLING, self.windows + 1, now + self.sampling_for
            self.opened_at, self.spacing = now, span
            self.gap, self.tail = max(self.interval, gap), tail
            logger.debug("freshness window %d opens %.1f s into the test: %s, samples %.2f s, polls %.3f s apart",
                         self.windows, now - self.budget.started, self.pace, self.sampling_for, self.gap)  # fmt: skip

    def _precise_opens(self, now: float) -> None:
        """A window whose samples count opens ``now`` (or sampling all the time): for a store that keeps up, the
        first is when ``precise_at`` says from then on, never a later forecast (the next window's: a 30 s run whose
        window opened ~25 s in said 53 to 82 s)."""
        if self.pace == FINE and not self.precise_opened:
            self.precise_at, self.precise_opened = now - self.budget.started, True

    def _share_withholds(self, probe: FreshnessProbe) -> bool:
        """Whether the query share is what keeps the probe from sampling now (saving up for a window, or following
        one's samples): not while it learns or rechecks the store's pace (a recheck samples one call on purpose), a
        worker waits to be told that pace by the one that learns it, or the service acknowledges no call it hears
        (``FreshnessProbe.failing_since``: there is nothing to sample)."""
        if self.state == LEARNING or probe.failing_since is not None:
            return False
        return self.shared is None or self.shared.learns or self.shared.told() is not None

    def _take_told(self) -> None:
        """A worker that does not learn takes the pace and cycle another learnt for the test, the latest told."""
        told = self.shared.told() if self.shared is not None and not self.shared.learns else None
        if told is not None:
            self.pace, self.cycle = told

    def _waits_to_be_told(self, elapsed: float) -> bool:
        """Whether a worker that does not learn leaves the learning (and its rechecks) to the one that does,
        ``elapsed`` s into the test: once told, always; before, for ``TOLD_WITHIN_SECONDS`` after learning starts."""
        if self.shared is None or self.shared.learns:
            return False
        return self.shared.told() is not None or elapsed < LEARN_FIRST_AT_SECONDS + TOLD_WITHIN_SECONDS

    def _paced_overlap(self, probe: FreshnessProbe, now: float) -> bool:
        """Whether a store slower than the load may get its next window while the last one's samples are still
        pending: one QueryLog covers them all, so the new window's polls follow the old samples too, and windows come
        through the run rather than one per visibility (at --store-rate 60 of 100 calls/s, 30 s: one window's samples
        took ~9 s to be visible, and no later one paid for its samples after the stop). Only once a sample was found
        (before, how long the pending ones take is a guess: windows opened on it left samples to the last sweep), and
        not before its ``span`` (its sampling and funded tail) after the last window opened."""
        return (
            bool(probe.longest_found)
            and self.pace == PACED
            and self.state in (IDLE, WAITING)
            and now >= self.opened_at + self.spacing
        )

    def _reach(self, probe: FreshnessProbe, now: float, probe_now: float, sampling_for: float, span: float) -> float:
        """How long (s) after it opens a slow store's window's samples are expected to be visible: its sampling and the
        longest visibility found, grown as it did with the time into the test its sample was acknowledged (a
        backlog); and at least so grown from the oldest pending sample's age (a window opened while an earlier one's
        samples are pending); ``span`` when neither is known."""
        oldest = probe.pending.oldest_current()
        seen = [(probe.longest_found, probe.longest_found_at)] if probe.longest_found else []
        seen += [(probe_now - oldest.acked_at, oldest.acked_at)] if oldest is not None else []
        if not seen:
            return span
        reach = 0.0
        for visibility, acked_at in seen:
            reach = max(reach, visibility, self._grown(visibility, acked_at, now, probe_now, now + sampling_for))
        return max(sampling_for + reach, span)

    def _grown(self, visibility: float, acked_at: float, now: float, probe_now: float, until: float) -> float:
        """The visibility (s) of a sample acknowledged at ``acked_at`` (the probe's clock) grown as a backlog grows,
        in proportion to the time into the test, to a log acknowledged at ``until`` (the budget's clock)."""
        acked_into_test = now - self.budget.started - (probe_now - acked_at)
        return visibility / max(acked_into_test, MIN_RATE_SECONDS) * (until - self.budget.started)

    def _expected(self, probe: FreshnessProbe, acked_at: float) -> float:
        """The visibility (s) a sample of a store slower than the load acknowledged at ``acked_at`` (the probe's
        clock) is expected to have: the longest found, grown as a backlog grows with the time into the test."""
        found_into_test = probe.longest_found_at - self.probe_started
        grown = probe.longest_found / max(found_into_test, MIN_RATE_SECONDS) * (acked_at - self.probe_started)
        return max(probe.longest_found, grown)

    def _chain(self, probe: FreshnessProbe, acks: list[float], probe_now: float, relative: float,
               stop_at: float = -math.inf) -> int:  # fmt: skip
        """How many polls from ``probe_now`` follow samples acknowledged at ``acks`` (the probe's clock, in order)
        until the last is expected visible (``_expected``): a backlog stores in order, so each poll comes the poll
        interval plus ``relative`` times the oldest pending one's age after the last, at least ``relative`` times
        its expected visibility (``poll_gap``; ``RELATIVE_GAP`` before ``stop_at``, the test's stop on the probe's
        clock); one chain follows every window's samples."""
        polls, at = 0, probe_now
        for acked in acks:
            visible_at = acked + self._expected(probe, acked)
            while at < visible_at:
                apart = RELATIVE_GAP if at < stop_at else relative
                at += max(self.interval + apart * (at - acked), apart * (visible_at - acked))
                polls += 1
        return polls

    def _pays_after_stop(self, probe: FreshnessProbe, probe_now: float, spendable: int, accrual: float,
                         left: float, gap: float, reach: float, sampling_for: float) -> bool:  # fmt: skip
        """Whether a window whose samples become visible only after the test (``reach`` s from now, ``left`` s to
        its end) is paid for until then by what is saved and what accrues until the end (after the stop nothing
        accrues: a window at 25 s of 30 s at --store-rate 60 had its samples settled by the last sweep, late by 18 s).
        Once a sample was found, the polls of the one chain that follows the pending samples and the window's
        (``_chain``), not the window's as if alone: that charged each late window the polls from its samples' first
        seconds, and at --store-rate 40 of 100 calls/s no window opened after ~18 s of a 30 s run (the figures said
        nothing of its last 12 s). Before, its polls a ``gap`` apart over its sampling and tail, then a tenth of their
        age apart."""
        if math.isinf(gap):
            return False
        needed: float
        if probe.longest_found:
            acks = sorted(sample.acked_at for sample in probe.pending)
            acks += [probe_now + sampling_for * step / WINDOW_POINTS for step in range(WINDOW_POINTS + 1)]
            needed = self._chain(probe, acks, probe_now, MAX_RELATIVE_GAP, probe_now + left)
        else:
            tail = FIRST_TAIL_SECONDS
            aged = math.log((gap + RELATIVE_GAP * max(reach - sampling_for - tail, 0.0)) / gap) / RELATIVE_GAP
            needed = (sampling_for + tail) / gap + aged
        return spendable + accrual * max(min(left, reach), 0.0) >= needed + SWEEP_QUERIES

    def _stretched(self, probe: FreshnessProbe, probe_now: float) -> float:
        """After the stop (nothing accrues), the relative gap the polls of a store slower than the load take:
        ``RELATIVE_GAP`` while what is saved pays for the chain that follows the pending samples until the youngest
        is expected visible (``_chain``), else coarser, up to ``MAX_RELATIVE_GAP``: the share follows the run's last
        seconds at a coarser bracket (each measured, the largest stated) rather than leave them to the last sweep."""
        if not probe.longest_found:
            return RELATIVE_GAP
        acks, spendable = sorted(sample.acked_at for sample in probe.pending), self.budget.spendable(probe.queries)
        relative = RELATIVE_GAP
        while relative < MAX_RELATIVE_GAP and self._chain(probe, acks, probe_now, relative) > spendable:
            relative += RELATIVE_GAP / 4
        return min(relative, MAX_RELATIVE_GAP)

    def _learn(self, probe: FreshnessProbe, now: float, probe_now: float) -> None:
        """The learning samples, taken at the probe's rate: the first poll that finds some saw a flush (or a store
        at work), stored up to the latest sent sample it found. If even the latest acknowledged of those was older
        than ``LEARN_LAG_SECONDS`` when last looked for (the lower end of its bracket), the store is slower than the
        load (``PACED``); else it keeps up (``FINE``) once a sample of a later flush is found, one that a poll sent
        after the first flush was seen missed: ``cycle`` is the progress, in the latest sent sample found, between
        the last poll that missed it and the one that found it (the flush period, to the sample spacing; for a store
        at work all the time the progress between two polls), at least the longest that a found sample was surely
        not visible. A store that no poll ever missed a sample of (it stores each log as asked) within
        ``LEARN_PATIENCE_SECONDS`` of the first flush: its progress from that flush to the next poll that found a
        sample sent later. Nothing found within ``LEARN_PATIENCE_SECONDS``: ``PACED``, every learning sample pending
        and kept as its first window (``_keep_backlog``); nothing more after the first: ``PACED``. Then the learning
        samples are dropped, never counted, but for those of a backlog's first window, and those of the whole cycle of
        a store that keeps up: held back, counted only if no window counts any (``FreshnessProbe.settle_held``)."""
        if self.cycle:
            self._recheck(probe)
            return
        learning = probe.held[self.learning_from :]
        ids = {id(sample) for sample in learning}
        # (found at, acknowledged at, surely not visible for, sent at) of each learning sample found (s, probe's clock)
        found = [(sample.acked_at + latency, sample.acked_at, latency - gap, sample.sent_at)
                 for sample, latency, gap in probe.held_found if id(sample) in ids]  # fmt: skip
        oldest = learning[0].acked_at if learning else probe_now
        if not found:
            if probe_now - oldest > LEARN_PATIENCE_SECONDS:
                # All pending: a backlog (or a service that stopped, its samples lost), the first window, counted
                self._keep_backlog(probe, now, -math.inf, probe_now - oldest)
            return
        first = min(item[0] for item in found)
        flushed = [item for item in found if item[0] <= first + 1e-6]
        stored_to = _stored_to(first, found)
        # (found at, last missed at) of each sample of a later flush: missed by a poll sent at or after the one
        # that saw the first (one found at its first look may be of the first flush, acknowledged late)
        later = [
            (seen, acked + unseen) for seen, acked, unseen, _ in found if unseen > 0 and acked + unseen >= first - 1e-6
        ]
        if min(item[2] for item in flushed) > LEARN_LAG_SECONDS:
            self._keep_backlog(probe, now, stored_to, first - stored_to)
            return
        if not later and probe_now - first > LEARN_PATIENCE_SECONDS:
            # No poll missed a sample since: a store that stores each log as asked; one sent after those it
            # first found marks its progress
            later = [(seen, first) for seen, _, _, sent in found if sent > stored_to]
        if later:
            second = min(seen for seen, _ in later)
            cycle_starts = _stored_to(max(missed for seen, missed in later if seen <= second + 1e-6), found)
            cycle_ends = _stored_to(second, found)
            self.pace, self.cycle = FINE, max(cycle_ends - cycle_starts, max(item[2] for item in found))
            # The samples of that one whole cycle stay held back: a figure (at the learning's coarse bracket)
            # if no window counts any, every phase of the flush in it once (a short light run).
            self._close(probe, keep=lambda sample: cycle_starts < sample.sent_at <= cycle_ends)
            self.held_window = True
        elif probe_now - first > LEARN_PATIENCE_SECONDS:  # it stored once, then nothing
            self.pace, self.cycle = PACED, 0.0
            self._close(probe)

    def _keep_backlog(self, probe: FreshnessProbe, now: float, stored_to: float, lag: float) -> None:
        """A store learnt slower than the load: the learning's samples sent after the latest one stored (all
        pending: a backlog stores in order) are its first window, counted, polled a tenth of the ``lag`` (s) that
        one had when found plus a tenth of the youngest one's age apart; those acknowledged up to it are dropped. A
        whole stretch of acknowledgements, never single samples by their own bracket (at --store-rate 40 of 100
        calls/s the first window opened ~11 s into a 30 s run, after learning dropped its ~4 s of samples, and the
        figures covered ~2 s of acknowledgements)."""
        self.pace, self.cycle = PACED, 0.0
        learning_from = self.learning_from
        self._close(probe, keep=lambda sample: sample.sent_at > stored_to)
        kept = len(probe.held) - learning_from
        probe.release_held(learning_from)
        if kept:
            self.windows += 1
            self.gap, self.tail = max(self.interval, RELATIVE_GAP * lag), 0.0
            self.opened_at, self.spacing = now, 0.0

    def _recheck_age(self) -> float:
        """How old (s) a sample of a store learnt to keep up is when it is looked for, once: a quarter more than its
        cycle, and at least ``LEARN_LAG_SECONDS``."""
        return max(LEARN_LAG_SECONDS, 1.25 * self.cycle)

    def _recheck(self, probe: FreshnessProbe) -> None:
        """Whether a store learnt to keep up still does (one slower than the load keeps up at first): one sample
        (sampling closes once one was acknowledged), looked for once at ``_recheck_age``; found, it does, not found,
        it is slower (``PACED``). Then dropped."""
        learning = probe.held[self.learning_from :]
        if probe.sampling and learning:
            probe.close_sampling()
        if any(not sample.pending for sample in learning):
            self.pace = FINE
        elif any(s.pending and s.last_look - s.acked_at >= self._recheck_age() for s in learning):
            self.pace, self.cycle = PACED, 0.0
        else:
            return
        self._close(probe)

    def _sampling_for(self, known: float) -> float:
        """How long a window samples, ``known`` the longest visibility found (s): a store that keeps up, a whole
        number of its flush cycles (``cycle``, else ``known``), at least ``FIRST_TAIL_SECONDS``, so that every phase
        of the flush is sampled as often; a slower one, at most ``FIRST_TAIL_SECONDS`` (its samples are polled by
        their age)."""
        if self.pace == FINE:
            cycle = max(self.cycle or known, 1e-3)  # a cycle learnt 1.98 s of a 2 s flush is one, not two
            return cycle * max(math.ceil(FIRST_TAIL_SECONDS / cycle - CYCLE_SLACK), 1)
        return min(max(known, MIN_SAMPLING_SECONDS), FIRST_TAIL_SECONDS)

    def _tail(self, known: float) -> float:
        """How long after a window closes its samples are polled every window gap (s): the longest visibility
        found; at most ``FIRST_TAIL_SECONDS`` for a store slower than the load."""
        return known if self.pace == FINE else min(known, FIRST_TAIL_SECONDS)

    def _lag(self, probe: FreshnessProbe, now: float, probe_now: float) -> float:
        """How long (s) a log acknowledged now is expected to take to be visible: the longest found, the oldest
        pending sample's age, and a backlog's growth (the latest acknowledged sample found: its visibility over its
        time into the test) carried to now."""
        oldest = probe.pending.oldest_current()
        lag = max(probe.longest_found, probe_now - oldest.acked_at if oldest is not None else 0.0)
        if probe.latest_found_at:
            lag = max(lag, self._grown(probe.latest_found, probe.latest_found_at, now, probe_now, now))
        return lag

    def _polls_after(self, reach: float) -> float:
        """The polls that follow a sample taken at the stop until it is visible ``reach`` s later: the poll interval
        plus a tenth of its age apart."""
        return math.log((self.interval + RELATIVE_GAP * reach) / self.interval) / RELATIVE_GAP

    def _keeps_reserve(self, probe: FreshnessProbe, now: float, probe_now: float, spendable: int, accrual: float,
                       left: float) -> bool:  # fmt: skip
        """Sampling all the time: whether what is saved, and what accrues until the test's end (``left`` s away),
        still pays for following a sample taken now until it is visible, after the stop where nothing accrues
        (unthrottled calls on a store of 300 logs/s spent the share as the test stopped, and the samples pending
        got only the last sweep's bracket: p50 21,381 ms against a truth of 12,327). Always, without a known end."""
        if math.isinf(left):
            return True
        reach = self._lag(probe, now, probe_now)
        needed = CONTINUOUS_MARGIN * self._polls_after(reach) + SWEEP_QUERIES
        return spendable + accrual * max(min(left, reach), 0.0) >= needed

    def _fine_window(self, probe: FreshnessProbe, now: float, spendable: int, accrual: float, sampling_for: float,
                     span: float, known: float) -> bool:  # fmt: skip
        """A store that keeps up: the next window waits until the share pays for polls every poll interval over it
        (at 100 calls/s ~24 s into a test, counting what accrues until it ends before the test does). Else, a test
        of known length (``-t``) too short for that gets its last window that fits at the gap the share then pays
        for, counted (no finer one can follow; held back, when coarser than a fifth of the cycle, on a worker that
        learnt for the others, which saved their share for finer ones: counted only if none counted any,
        ``FreshnessProbe.settle_held`` on the master);
        without a known end, one coarse window opens as soon as the share pays for it, its samples held back,
        counted only if no finer window counted any (``settle_held``). Returns whether one will open;
        ``precise_at``: when (s into the test) the share is expected to pay for one at the poll interval."""
        left = self.budget.ends() - now
        if not self.precise_opened:
            wait = self._precise_wait(spendable, accrual, sampling_for, span, left)
            if math.isinf(wait) and not math.isinf(left):  # none fits before the end: its last window that does
                wait = max(left - span - END_MARGIN_SECONDS, 0.0)
            self.precise_at = now - self.budget.started + wait
        funded = min(span, left) if self._accrues_after(left) else sampling_for
        gap = self._affordable_gap(spendable, accrual, funded, span)
        if gap <= self.interval * (1 + 1e-9):
            self.state, self.sampling_for, self.holds = WAITING, sampling_for, False
            self.opens_at = self._random_start(now, known, span)
            if not self.precise_opened:
                self.precise_at = self.opens_at - self.budget.started
        elif self._last_chance(probe, left, span) and gap <= self._stated(probe):
            # The worker that learnt for the others holds it back when coarser than a fifth of the cycle: they saved
            # their share for a finer one (at 30 s its 0.29 s window counts beside theirs, a 12 s run's ~1 s does not)
            coarse = gap > FIRST_FIGURE * RELATIVE_GAP * known and self.shared is not None and self.shared.learns
            self.state, self.sampling_for, self.holds, self.opens_at = WAITING, sampling_for, coarse, now
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
        wait = self._precise_wait(spendable, accrual, sampling_for, span)
        return wait <= PRECISE_WAIT_SECONDS and wait + span <= left

    def _precise_wait(self, spendable: int, accrual: float, sampling_for: float, span: float,
                      left: float = math.inf) -> float:  # fmt: skip
        """How long (s) until the share pays for a window polled every poll interval over ``span`` s, at the call
        rate of now, as ``_fine_window`` decides it: what is saved and what accrues while it samples; for a store that
        keeps up with the test's end known (``left`` s away, ``_accrues_after``), what accrues until the window ends
        (a 2 s flush at 100 calls/s in 35 s: ~24 s, where counting its sampling alone said ~53 s). Infinite while
        nothing accrues, or when no such window fits before the end."""
        if accrual <= 0:
            return math.inf
        needed = span / self.interval + 1 - spendable
        if not self._accrues_after(left):
            return max(needed - accrual * sampling_for, 0.0) / accrual
        wait = max(needed / accrual - span, 0.0)
        return wait if wait + span <= left else math.inf

    @staticmethod
    def _last_chance(probe: FreshnessProbe, left: float, span: float) -> bool:
        """Whether a window of ``span`` s opened now is the test's last that ends before it (``left`` s to go): a
        later one would poll after the stop, where nothing accrues; while no sample was found, any late one."""
        return left <= span + END_MARGIN_SECONDS and (left >= span or not probe.longest_found)

    @staticmethod
    def _stated(probe: FreshnessProbe) -> float:
        """The coarsest gap a test's last window may have: any while no sample was found (a figure with its bound
        stated is better than none), else no coarser than the largest bracket so far (it would widen the bound), or
        than the learning's held-back cycle's (a window coarser than that would be no better)."""
        if probe.max_poll_gap > 0:
            return probe.max_poll_gap
        return max((gap for _, _, gap in probe.held_found), default=0.0) or math.inf

    @staticmethod
    def _affordable_gap(spendable: int, accrual: float, sampling_for: float, span: float) -> float:
        """The shortest gap (s) between polls over ``span`` s that the budget pays for: what is saved and what
        accrues while the window samples, the first poll's kept aside (infinite below ``MIN_WINDOW_POLLS``)."""
        polls = spendable + accrual * sampling_for - 1
        return span / polls if polls >= MIN_WINDOW_POLLS else math.inf

    def _close(self, probe: FreshnessProbe, keep: Callable[[Sample], bool] = lambda sample: False) -> None:
        if probe.sampling:
            probe.close_sampling()
        if self.state == LEARNING:  # the learning samples are never counted, but a whole cycle's (``keep``) may be
            probe.drop_held(self.learning_from, keep)
        probe.holding, self.state = False, IDLE
