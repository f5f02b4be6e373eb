"""The probe's greenlet: one QueryLog per poll interval (and token with pending samples), outside Locust's stats.

Its calls go over the process's shared grpc.aio transport and fire no request event: the workload's
requests/s and latency never include them; the probe counts them itself (``queries``, ``query_failures``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import grpc

from grpc_user.calls import status_name
from grpc_user.locust.freshness.probe import FATAL_STATUSES, QUERY_PATH, FreshnessProbe
from grpc_user.locust.transport.bridge import LoopStopped

logger = logging.getLogger(__name__)
Call = Callable[[str, bytes], bytes]


def poll_once(probe: FreshnessProbe, call: Call, clock: Callable[[], float] = time.monotonic) -> int:
    """One poll: a QueryLog per token with pending samples; returns how many samples it found."""
    probe.refresh_due()
    probe.started_poll(clock())
    found = 0
    for token, payload in probe.queries_due():
        asked_at = clock()
        try:
            raw = call(QUERY_PATH, payload)
        except grpc.RpcError as error:
            status = status_name(error)
            probe.failed(f"{status}: {error.details() or ''}".rstrip(": "), fatal=status in FATAL_STATUSES)
            if probe.closed:
                logger.warning("freshness probe stopped: QueryLog failed with %s", probe.error)
            continue
        except LoopStopped as error:
            probe.failed(str(error), fatal=True)
            continue
        found += probe.observe(token, raw, asked_at)
    return found


def poll_until_closed(
    probe: FreshnessProbe,
    call: Call,
    sleep: Callable[[float], Any],
    on_interval: Callable[[], Any] | None = None,
    interval_seconds: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Poll every ``probe.poll_interval`` s until the probe closes; ``on_interval`` every ``interval_seconds``."""
    next_poll = next_interval = clock()
    while not probe.closed:
        now = clock()
        if on_interval is not None and now >= next_interval:
            on_interval()
            next_interval = max(next_interval + interval_seconds, now)
        if now < next_poll:
            sleep(min(next_poll, next_interval) - now if on_interval is not None else next_poll - now)
            continue
        next_poll = max(next_poll + probe.poll_interval, now)
        poll_once(probe, call, clock)
