"""``--max-requests``: a total number of calls, handed out as permits before each call.

Taking a permit before the call (not counting after it) makes the total exact with any number
of users in flight. In distributed mode the master splits the total into per-worker shares.
"""

from __future__ import annotations

from collections.abc import Callable


class RequestBudget:
    """Permits for calls; ``on_spent`` runs once when the last permitted call has finished."""

    def __init__(self) -> None:
        self.remaining: int | None = None
        self.in_flight = 0
        self._on_spent: Callable[[], None] | None = None

    def limit(self, total: int | None, on_spent: Callable[[], None]) -> None:
        """Allow ``total`` more calls (None: unlimited)."""
        self.remaining, self.in_flight, self._on_spent = total, 0, on_spent
        if total == 0:
            self._spent()

    def take(self) -> bool:
        """Take a permit for one call; False when the budget is used up."""
        if self.remaining is None:
            return True
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        self.in_flight += 1
        return True

    def release(self) -> None:
        """A permitted call finished."""
        if self.remaining is None:
            return
        self.in_flight -= 1
        if self.remaining == 0 and self.in_flight == 0:
            self._spent()

    def refund(self) -> None:
        """A permitted call was abandoned before it could be recorded (its user was stopped): give it back."""
        if self.remaining is None:
            return
        self.in_flight -= 1
        self.remaining += 1

    def _spent(self) -> None:
        callback, self._on_spent = self._on_spent, None
        if callback is not None:
            callback()


def split_total(total: int, worker_ids: list[str]) -> dict[str, int]:
    """Shares of ``total`` per worker that add up to exactly ``total``."""
    if not worker_ids:
        return {}
    base, extra = divmod(total, len(worker_ids))
    return {worker: base + (1 if index < extra else 0) for index, worker in enumerate(sorted(worker_ids))}
