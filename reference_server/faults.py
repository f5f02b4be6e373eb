"""Fault injection for rehearsals and tests: latency, a stall, UNAVAILABLE errors, silent drops at flush."""

from __future__ import annotations

import random
import time

from reference_server.settings import ServerSettings


class Faults:
    """Decides, from one seeded random source, which calls fail and which stored logs are dropped."""

    def __init__(self, settings: ServerSettings) -> None:
        self.latency_seconds = settings.latency_ms / 1000
        self.error_rate = settings.error_rate
        self.drop_rate = settings.drop_rate
        started = time.monotonic()
        self.store_rate = settings.store_rate
        self._storage_free_at = started
        self._stall_at, self._stall_for = settings.stall_at, settings.stall_for
        self._stall_from = self._stall_until = 0.0  # set at the first call: the stall is timed from the load's start
        self._random = random.Random(settings.seed)

    def storage_delay(self, count: int) -> float:
        """How long to wait before storing ``count`` logs so that storage stays within ``--store-rate``."""
        if self.store_rate <= 0:
            return 0.0
        now = time.monotonic()
        start = max(now, self._storage_free_at)
        self._storage_free_at = start + count / self.store_rate
        return start - now

    def stall_seconds(self) -> float:
        """How long a call arriving now waits: until the stall ends, if it arrives during the stall (``--stall-at``
        seconds after the first call, a load generator's preflight included, for ``--stall-for`` seconds)."""
        now = time.monotonic()
        if not self._stall_until and self._stall_for:
            self._stall_from, self._stall_until = now + self._stall_at, now + self._stall_at + self._stall_for
        return self._stall_until - now if self._stall_from <= now < self._stall_until else 0.0

    def call_fails(self) -> bool:
        """This call is answered UNAVAILABLE."""
        return self.error_rate > 0 and self._random.random() < self.error_rate

    def keep(self, count: int) -> list[bool]:
        """For each of ``count`` acknowledged logs: stored (True) or silently dropped (False)."""
        if self.drop_rate <= 0:
            return [True] * count
        draw = self._random.random
        return [draw() >= self.drop_rate for _ in range(count)]
