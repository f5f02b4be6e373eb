"""The freshness probe's pending samples, indexed so that a poll costs what it covers, not everything pending.

A sample is *current* while it is younger than ``overdue_after`` seconds (a multiple of the longest visibility
latency found so far): every poll looks for the current samples. An older one is *overdue* (its log is late, or
was never stored): a poll looks for it only when its turn comes, ``RELATIVE_GAP`` times its age after the last look
(its bracket, if it is found then, is at most a tenth of its visibility), until the last sweep at the end. So a log
the service never stores does not stretch every query's time window back to its timestamp, and a poll's work is
the current samples plus the overdue ones whose turn it is, each found sample removed in O(1). Whether a sample is
still pending is a flag on the sample (``Sample.pending``), read in a poll's passes over its samples without a key
or a lookup: a poll of a run whose service stores nothing walks some 300 current samples (15 s at 20 a second).
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from grpc_user.run_files.schema import AGED_GAP_SHARE

# A sample past the polls its window was funded for, and an overdue one, is looked for again this many times its age
# after the last look: its figure is then late by at most this fraction of it (declared once, with the run files'
# words that explain a bound that wide).
RELATIVE_GAP = AGED_GAP_SHARE
# A sample is current at least this long (the real service flushes every 5 s: its logs are never overdue), and
# for this many times the longest visibility latency found (a growing backlog keeps its samples current).
MIN_CURRENT_SECONDS = 15.0
CURRENT_TIMES_LONGEST = 3.0


@dataclass(slots=True, eq=False)
class Sample:
    """One sampled log: its worker (``token``, '' in a single process) and number, request name, own timestamp
    (epoch s), acknowledgement and the start of the last poll that looked for it without finding it (monotonic s),
    the ``--action`` phase it was sent in ('' without actions), whether it is in a ``PendingSamples`` now, whether
    it was taken while samples are held back (``held``: not counted until ``FreshnessProbe.release_held``), and when
    its call was sent (``sent_at``, monotonic s: its log was queued after it, whenever the acknowledgement came;
    handed over by a worker, its acknowledgement)."""

    token: str
    number: int
    name: str
    logged_at: float
    acked_at: float = 0.0
    entry: Any = None
    last_look: float = 0.0
    phase: str = ""
    pending: bool = False
    held: bool = False
    sent_at: float = 0.0

    @property
    def key(self) -> tuple[str, int]:
        """(token, number): unique within a test."""
        return self.token, self.number


class PendingSamples:
    """Acknowledged samples not found yet, in acknowledgement order, with the overdue ones on a schedule."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, int], Sample] = {}
        self._current: deque[Sample] = deque()
        self._overdue: list[tuple[float, int, Sample]] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self._by_key.values())

    def add(self, sample: Sample) -> None:
        """A sample acknowledged now (acknowledgements come in time order); one of the same key is replaced."""
        replaced = self._by_key.get(sample.key)
        if replaced is not None:
            replaced.pending = False
        self._by_key[sample.key] = sample
        sample.pending = True
        self._current.append(sample)

    def pop(self, key: tuple[str, int]) -> Sample | None:
        """The pending sample ``key``, removed (None when it is not pending)."""
        sample = self._by_key.pop(key, None)
        if sample is not None:
            sample.pending = False
        return sample

    def has(self, sample: Sample) -> bool:
        """Whether ``sample`` is still pending."""
        return sample.pending

    def clear(self) -> list[Sample]:
        """Remove every pending sample; return them in acknowledgement order."""
        samples = sorted(self._by_key.values(), key=lambda sample: sample.acked_at)
        for sample in samples:
            sample.pending = False
        self._by_key.clear()
        self._current.clear()
        self._overdue.clear()
        return samples

    def due(self, now: float, overdue_after: float) -> tuple[list[Sample], list[Sample]]:
        """What a poll at ``now`` looks for: (every current sample, the overdue ones whose turn it is); pass both
        to ``looked`` after the poll."""
        while self._current:  # the oldest current samples that aged past overdue_after take turns from now on
            sample = self._current[0]
            if sample.pending and now - sample.acked_at <= overdue_after:
                break
            self._current.popleft()
            if sample.pending:
                self._schedule(sample)
        overdue = []
        while self._overdue and self._overdue[0][0] <= now:
            sample = heapq.heappop(self._overdue)[2]
            if sample.pending:
                overdue.append(sample)
        return [sample for sample in self._current if sample.pending], overdue

    def oldest_current(self) -> Sample | None:
        """The earliest acknowledged sample still pending that every poll looks for (None when none is)."""
        while self._current and not self._current[0].pending:
            self._current.popleft()
        return self._current[0] if self._current else None

    def youngest_current(self) -> Sample | None:
        """The last acknowledged sample still pending that every poll looks for (None when none is)."""
        while self._current and not self._current[-1].pending:
            self._current.pop()
        return self._current[-1] if self._current else None

    def next_turn(self) -> float:
        """When the next overdue sample's turn comes (monotonic s; infinite when none is scheduled)."""
        while self._overdue and not self._overdue[0][2].pending:
            heapq.heappop(self._overdue)
        return self._overdue[0][0] if self._overdue else float("inf")

    def looked(self, current: list[Sample], overdue: list[Sample], asked_at: float) -> None:
        """A poll that started at ``asked_at`` looked for these samples: those still pending wait for the next look
        (an overdue one its turn)."""
        for sample in current:
            sample.last_look = asked_at
        for sample in overdue:
            if sample.pending:
                sample.last_look = asked_at
                self._schedule(sample)

    def _schedule(self, sample: Sample) -> None:
        looked_at = max(sample.last_look, sample.acked_at)
        age = looked_at - sample.acked_at
        heapq.heappush(self._overdue, (looked_at + RELATIVE_GAP * age, next(self._order), sample))

    def older_than(self, moment: float, since: float = float("-inf")) -> int:
        """How many pending samples were acknowledged before ``moment`` (and at ``since`` or after; monotonic s)."""
        return sum(1 for sample in self._by_key.values() if since <= sample.acked_at < moment)

    def older_than_by_second(self, moment: float, wall_offset: float) -> dict[int, int]:
        """The pending samples acknowledged before ``moment`` (monotonic s), counted by the epoch second of their
        acknowledgement (monotonic + ``wall_offset``): what a worker tells the master, whose clock is not this
        process's monotonic one."""
        counts = dict[int, int]()
        for sample in self._by_key.values():
            if sample.acked_at < moment:
                second = int(sample.acked_at + wall_offset)
                counts[second] = counts.get(second, 0) + 1
        return counts
