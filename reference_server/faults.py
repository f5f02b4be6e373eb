"""Fault injection for rehearsals and tests: latency, UNAVAILABLE errors, silent drops at flush."""

from __future__ import annotations

import random

from reference_server.config import ServerConfig


class Faults:
    """Decides, from one seeded random source, which calls fail and which stored logs are dropped."""

    def __init__(self, config: ServerConfig) -> None:
        self.latency_seconds = config.latency_ms / 1000
        self.error_rate = config.error_rate
        self.drop_rate = config.drop_rate
        self._random = random.Random(config.seed)

    def call_fails(self) -> bool:
        """This call is answered UNAVAILABLE."""
        return self.error_rate > 0 and self._random.random() < self.error_rate

    def keep(self, count: int) -> list[bool]:
        """For each of ``count`` acknowledged logs: stored (True) or silently dropped (False)."""
        if self.drop_rate <= 0:
            return [True] * count
        draw = self._random.random
        return [draw() >= self.drop_rate for _ in range(count)]
