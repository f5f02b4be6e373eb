"""``--max-requests``: a total number of calls, handed out as permits before each call.

Taking a permit before the call (not counting after it) makes the total exact with any number
of users in flight. In distributed mode the master keeps the total (``BudgetPool``) and hands it
to workers in small leases as they ask: a worker without users never asks, so no part of the
total is stranded on it, and the run ends after exactly N calls however users are spread.
"""

from __future__ import annotations

from collections.abc import Callable

from gevent.event import Event

MIN_LEASE = 10


class RequestBudget:
    """Permits for calls; ``on_spent`` runs once when the last permitted call has finished."""

    def __init__(self) -> None:
        self.remaining: int | None = None
        self.in_flight = 0
        self.exhausted = True
        self._on_spent: Callable[[], object] | None = None
        self._ask: Callable[[int], None] | None = None
        self._lease_size: Callable[[], int] = lambda: MIN_LEASE
        self._asking = False
        self._granted = Event()
        self.closed = False

    def close(self) -> None:
        """The process shuts down: no call is permitted any more, whatever test starts meanwhile (a master that
        rebalances users onto a worker whose own stop is under way); calls already permitted finish as usual."""
        self.closed = True
        self._wake_waiters()

    def limit(self, total: int | None, on_spent: Callable[[], object]) -> None:
        """Allow ``total`` more calls (None: unlimited)."""
        self._reset(total, on_spent)
        if total == 0:
            self._spent()

    def lease(self, ask: Callable[[int], None], lease_size: Callable[[], int], on_spent: Callable[[], object]) -> None:
        """Permits come in leases: ``ask(n)`` requests n more, ``grant`` delivers them (0: the total is used up)."""
        self._reset(0, on_spent)
        self.exhausted, self._ask, self._lease_size = False, ask, lease_size

    def _reset(self, total: int | None, on_spent: Callable[[], object]) -> None:
        self.remaining, self.in_flight, self._on_spent = total, 0, on_spent
        self.exhausted, self._ask, self._asking = True, None, False
        self._wake_waiters()

    def grant(self, permits: int) -> None:
        """The master's answer to ``ask``: more permits, or 0 when the total is handed out."""
        if self._ask is None:
            return
        self._asking = False
        if permits > 0:
            self.remaining = (self.remaining or 0) + permits
        else:
            self.exhausted = True
        self._wake_waiters()
        self._spent_if_done()

    @property
    def used_up(self) -> bool:
        """No call will be permitted any more (``--max-requests`` reached)."""
        return self.remaining is not None and self.remaining <= 0 and self.exhausted

    def take(self) -> bool:
        """Take a permit for one call (waiting for a lease if one is on its way); False when the budget is used up
        or closed."""
        if self.closed:
            return False
        if self.remaining is None:
            return True
        while self.remaining <= 0:
            if self.exhausted:
                return False
            self._request()
            self._granted.wait()
            if self.closed:
                return False
            if self.remaining is None:
                return True
        self.remaining -= 1
        self.in_flight += 1
        if self._ask is not None and not self.exhausted and self.remaining < self._lease_size() // 2:
            self._request()
        return True

    def release(self) -> None:
        """A permitted call finished."""
        if self.remaining is None:
            return
        self.in_flight -= 1
        self._spent_if_done()

    def refund(self) -> None:
        """A permitted call was abandoned before it could be recorded: give it back."""
        if self.remaining is None:
            return
        self.in_flight -= 1
        self.remaining += 1

    def _request(self) -> None:
        if self._ask is not None and not self._asking:
            self._asking = True
            self._ask(max(MIN_LEASE, self._lease_size()))

    def _wake_waiters(self) -> None:
        waiting, self._granted = self._granted, Event()
        waiting.set()

    def _spent_if_done(self) -> None:
        if self.exhausted and self.remaining == 0 and self.in_flight == 0:
            self._spent()

    def _spent(self) -> None:
        callback, self._on_spent = self._on_spent, None
        if callback is not None:
            callback()


class BudgetPool:
    """The master's ``--max-requests`` total, leased to the workers that ask."""

    def __init__(self, total: int) -> None:
        self.remaining = total
        self.holders: set[str] = set()
        self.done: set[str] = set()

    def grant(self, worker: str, wanted: int) -> int:
        """Permits for ``worker``: what it asks for, at most what is left."""
        permits = min(max(wanted, 1), self.remaining)
        self.remaining -= permits
        if permits:
            self.holders.add(worker)
        return permits

    def spent(self, worker: str) -> bool:
        """``worker`` used every permit it got; True when every permit of the total is used."""
        self.done.add(worker)
        return self.remaining == 0 and self.holders <= self.done
