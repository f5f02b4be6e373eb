"""The probe's greenlet: one QueryLog per poll for the samples it looks for, outside Locust's stats, paced.

Its calls go over the process's shared grpc.aio transport and fire no request event: the workload's
requests/s and latency never include them; the probe counts them itself (``queries``, ``query_failures``).
``PollPacing`` says when the next poll may start: while the test runs, no sooner than the poll interval after the
last one and only while the probe's queries stay within ``--freshness-query-share`` of its process's calls (with a
freshness SLO, at least every tenth of it whatever the share: a step is judged on a figure that precise); after
the stop, at the test's own pace or a quarter of the time since the stop, whichever is longer (a few queries cover an
audit of any length).
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
from grpc_user.locust.freshness.probe import FATAL_STATUSES, QUERY_PATH, FreshnessProbe
from grpc_user.locust.transport.bridge import LoopStopped

logger = logging.getLogger(__name__)
Call = Callable[[str, bytes], bytes]
# After the stop, the gap to the next poll is at least this much of the time since the stop.
AFTER_STOP_RATIO = 0.25


@dataclass
class PollPacing:
    """When the probe may poll: ``interval`` (s) the shortest gap; ``share`` the most queries per call of the process
    (a fraction); ``calls()`` the process's calls in this test (a master: every worker's); ``started`` and
    ``stopped()`` the test's start and stop (epoch s; ``stopped()`` is below ``started`` while it runs);
    ``longest``: the longest gap (s) whatever the share (``FreshnessProbe.longest_poll_gap``)."""

    interval: float
    share: float
    calls: Callable[[], int]
    started: float
    stopped: Callable[[], float] = lambda: 0.0
    longest: float = math.inf

    def ready(self, now: float, last_poll: float, queries: int) -> bool:
        """May a poll start at ``now`` (epoch s), the last one at ``last_poll``, ``queries`` made so far?"""
        if now - last_poll < self.interval:
            return False
        if now - last_poll >= self.longest:
            return True
        stopped = self.stopped()
        if stopped < self.started:
            return queries <= self.share * self.calls()
        pace = (stopped - self.started) / max(self.share * self.calls(), 1.0)
        return now - last_poll >= max(pace, AFTER_STOP_RATIO * (last_poll - stopped))


def poll_once(probe: FreshnessProbe, call: Call, clock: Callable[[], float] = time.monotonic,
              everything: bool = False) -> int:  # fmt: skip
    """One poll: a QueryLog for the samples due (``everything``: every pending one); returns how many it found."""
    look = probe.look(clock(), everything)
    if look is None:
        return 0
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
    return probe.observe(look, raw, asked_at)


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
    while not probe.closed:
        now = clock()
        if on_interval is not None and now >= next_interval:
            on_interval()
            next_interval = max(next_interval + interval_seconds, now)
        probe.refresh_due()
        if len(probe.pending) and pacing.ready(wall(), last_poll, probe.queries):
            last_poll = wall()
            poll_once(probe, call, clock)
            continue
        tick = probe.poll_interval if on_interval is None else min(probe.poll_interval, next_interval - now)
        sleep(max(tick, 0.001))
