"""Calls per server: where the calls went, from grpc's own per-subchannel counts (``grpc_user.channelz``).

With several replicas behind a target (``dns:///`` with round_robin, an ``ipv4:`` list, several
``--grpc-connections`` through an L4 balancer) these counts show the spread. They are read, never
counted per call: a process reads grpc's counters at most once per ``POLL_SECONDS`` (and at the
end of a test), and keeps calls per peer since the test started. A call that never reached a
server (no connection) started on no subchannel and is not counted. Workers send their counts to
the master with each stats report, the way Locust aggregates its own stats.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from grpc_user.channelz import subchannel_calls

REPORT_KEY = "grpc_peer_counts"
POLL_SECONDS = 3.0


@dataclass
class PeerCounter:
    """Calls per peer since the test started (or Locust's Reset Stats); ``reached``: every peer a call of the test
    started on, whatever the resets (the audit writes its barriers there)."""

    by_peer: dict[str, int] = field(default_factory=dict)
    reached: set[str] = field(default_factory=set)
    _seen: dict[int, int] = field(default_factory=dict)
    _unreported: dict[str, int] = field(default_factory=dict)
    _polled_at: float = 0.0
    _counting: bool = False

    def poll(self, force: bool = False) -> None:
        """Add the calls each subchannel started since the last read (at most once per POLL_SECONDS unless
        ``force``; never outside a test); a subchannel first seen now counts from zero."""
        now = time.monotonic()
        if not self._counting or (not force and now - self._polled_at < POLL_SECONDS):
            return
        self._polled_at = now
        for subchannel_id, (peer, started) in subchannel_calls().items():
            calls = started - self._seen.get(subchannel_id, 0)
            self._seen[subchannel_id] = started
            if calls > 0:
                self.by_peer[peer] = self.by_peer.get(peer, 0) + calls
                self.reached.add(peer)
                self._unreported[peer] = self._unreported.get(peer, 0) + calls

    def take_report(self) -> dict[str, int]:
        """The calls per peer since the last report, read now (a worker sends these to the master)."""
        self.poll(force=True)
        report, self._unreported = self._unreported, {}
        return report

    def merge_report(self, report: dict[str, int]) -> None:
        """Add a worker's report to this (master's) counter."""
        for peer, calls in report.items():
            self.by_peer[peer] = self.by_peer.get(peer, 0) + calls
            if calls > 0:
                self.reached.add(peer)

    def reset_stats(self) -> None:
        """Forget the counts (Locust's Reset Stats)."""
        self.by_peer.clear()

    def start_run(self) -> None:
        """At the start of a test: forget everything, and count from what grpc has counted so far."""
        self.by_peer.clear()
        self.reached.clear()
        self._unreported.clear()
        self._seen = {subchannel_id: started for subchannel_id, (_, started) in subchannel_calls().items()}
        self._polled_at = time.monotonic()
        self._counting = True

    def finish(self) -> None:
        """At the end of a test: read once more, then count nothing more (the audit's queries are not load)."""
        self.poll(force=True)
        self._counting = False
