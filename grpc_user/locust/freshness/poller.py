"""The probe's greenlet: one QueryLog per poll for the samples it looks for, outside Locust's stats, paced.

Its calls go over the process's shared grpc.aio transport and fire no request event: the workload's
requests/s and latency never include them; the probe counts them itself (``queries``, ``query_failures``).
``PollPacing`` says when the next poll may start: a window gap after the last while a current sample is pending
(those of the sampling window: every poll interval, or coarser, then a tenth of the youngest one's age once it is
older than its window was funded for, of the oldest one's for a store slower than the load,
``SamplingWindows.poll_gap``), on its own turn for an overdue one, and never
beyond the ``QueryBudget`` (``--freshness-query-share`` of the process's calls plus one, the polls after the stop
and the last sweep included). With a freshness SLO the probe samples all the time and polls at least every tenth of
the SLO whatever the share (a step is judged on a figure that precise).
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
from grpc_user.locust.freshness.probe import FATAL_STATUSES, QUERY_PATH, FreshnessProbe, Look
from grpc_user.locust.freshness.windows import QueryBudget, SamplingWindows
from grpc_user.locust.transport.bridge import LoopStopped

logger = logging.getLogger(__name__)
Call = Callable[[str, bytes], bytes]


@dataclass
class PollPacing:
    """When the probe may poll and sample: ``interval`` (s) the shortest gap between polls; ``budget`` the queries
    its share pays for; ``longest`` the longest gap (s) whatever the share (``FreshnessProbe.longest_poll_gap``:
    with a freshness SLO, then sampling never stops); ``windows`` when it samples (made from the budget when None).
    """

    interval: float
    budget: QueryBudget
    longest: float = math.inf
    windows: SamplingWindows | None = None

    def __post_init__(self) -> None:
        if self.windows is None:
            self.windows = SamplingWindows(self.budget, self.interval)

    def step(self, probe: FreshnessProbe, now: float, probe_now: float) -> None:
        """Open or close the probe's sampling for ``now`` (``time.time`` s; ``probe_now``: the probe's clock)."""
        if probe.rate * probe.share() <= 0:  # nothing to sample (the master: its workers sample; the users stopped)
            if probe.sampling:
                probe.close_sampling()
            if not self.budget.running and math.isinf(self.longest):  # the samples pending are polled by their age
                self.windows.step(probe, now, probe_now)  # type: ignore[union-attr]
        elif math.isinf(self.longest):
            self.windows.step(probe, now, probe_now)  # type: ignore[union-attr]
            probe.sampling_limited = probe.sampling_limited or self.windows.limited  # type: ignore[union-attr]
            probe.sampling_reserved_at = self.windows.reserved_at  # type: ignore[union-attr]
            probe.flush_cycle = self.windows.cycle  # type: ignore[union-attr]
            probe.precise_window_at = self.windows.precise_at  # type: ignore[union-attr]
        elif not probe.sampling and self.budget.running:
            probe.open_sampling()
        elif probe.sampling and not self.budget.running:
            probe.close_sampling()

    def gap(self, probe: FreshnessProbe, probe_now: float) -> float:
        """How long (s) after the last poll the next may start for the current samples: the window's gap (infinite
        when it waits for a sample's age), the poll interval without a current sample or with a freshness SLO."""
        if not math.isinf(self.longest) or probe.pending.oldest_current() is None:
            return self.interval
        return max(self.interval, self.windows.poll_gap(probe, probe_now))  # type: ignore[union-attr]

    def ready(self, probe: FreshnessProbe, now: float, last_poll: float, probe_now: float) -> bool:
        """May a poll start at ``now`` (s), the last one at ``last_poll``?"""
        if not len(probe.pending) or now - last_poll < self.interval:
            return False
        if now - last_poll >= self.longest:
            return True
        if self.budget.spendable(probe.queries) < 1:
            return False
        windows = self.windows
        assert windows is not None  # made in __post_init__
        if probe.pending.oldest_current() is not None and now - last_poll >= windows.poll_gap(probe, probe_now):
            return True
        return probe.pending.next_turn() <= probe_now


def poll_once(probe: FreshnessProbe, call: Call, clock: Callable[[], float] = time.monotonic, everything: bool = False,
              seen: Callable[[Look], Any] | None = None) -> int:  # fmt: skip
    """One poll: a QueryLog for the samples due (``everything``: every pending one); returns how many it found.
    ``seen(look)`` after an answer was read."""
    look = probe.look(clock(), everything)
    if look is None:
        return 0
    asked_at = clock()
    probe.asking()
    try:
        raw = call(QUERY_PATH, look.payload)
    except grpc.RpcError as error:
        probe.answered(clock() - asked_at)
        status = status_name(error)
        probe.failed(f"{status}: {error.details() or ''}".rstrip(": "), fatal=status in FATAL_STATUSES)
        if probe.closed:
            logger.warning("freshness probe stopped: QueryLog failed with %s", probe.error)
        return 0
    except LoopStopped as error:
        probe.failed(str(error), fatal=True)
        return 0
    probe.answered(clock() - asked_at)
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
    """Sample and poll as ``pacing`` allows until the probe closes; ``on_interval`` every ``interval_seconds``."""
    next_interval = clock()
    last_poll = float("-inf")
    last_step = wall()
    # When the loop's last sleep was to end (wall s), the loop's next look: a poll the pacing held at the look before
    # (the query share had not paid for it yet) could start no sooner, so it is late only from then, not from due.
    woken = float("-inf")
    while not probe.closed:
        now, at = clock(), wall()
        if on_interval is not None and now >= next_interval:
            on_interval()
            next_interval = max(next_interval + interval_seconds, now)
        if pacing.budget.running:
            probe.ask(at - last_step)
        last_step = at
        pacing.step(probe, at, now)
        probe.refresh_due()
        if pacing.ready(probe, at, last_poll, now):
            oldest = probe.pending.oldest_current()
            if oldest is not None:  # due a gap after the last poll, or after the oldest current sample's ack
                due = max(last_poll, at - (now - oldest.acked_at)) + pacing.gap(probe, now)
                if math.isfinite(due):
                    probe.started_late(at - max(due, woken))
            last_poll = at
            poll_once(probe, call, clock)
            continue
        # The next poll a window gap after the last, not a loop later (a gap of 0.105 s polled 0.2 s apart)
        wait = last_poll + pacing.gap(probe, now) - at
        tick = wait if -0.001 < wait < probe.poll_interval else probe.poll_interval  # a rounding short: a ms
        if on_interval is not None:
            tick = min(tick, next_interval - now)
        tick = max(tick, 0.001)
        sleep(tick)
        woken = at + tick
