"""The open model's clock: calls start on a schedule that does not wait for answers (like k6's
constant-arrival-rate or wrk2), and each call's latency counts from when it should have started.

The rate is a total over every process. Each process takes its share in proportion to the users it
runs (``-u`` is the most calls in flight at once), so the shares add up to the rate exactly however
users are spread over workers. A dispatcher greenlet hands each scheduled start, at its time, to a
user waiting for work; a start that finds every user busy is **dropped**, counted and reported
(``ARRIVAL_DROPPED``) by the next user that becomes free, never silently delayed. Nothing is handed
out ahead of time, so a changed rate (the capacity search's steps) takes effect within one interval.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import gevent
from gevent.event import AsyncResult, Event

from grpc_user.locust.open_model.schedule import RateSchedule

# With no rate (no users yet), look again this much later.
IDLE_STEP_SECONDS = 0.05


class LiveRate:
    """A rate changed while the test runs (the capacity search's steps): calls per second in total."""

    def __init__(self, value: float) -> None:
        self.value = value

    def rate(self, elapsed: float) -> float:
        """The rate now, whatever the time."""
        return self.value

    def __str__(self) -> str:
        return f"{self.value:g} (live)"


@dataclass(frozen=True)
class Dropped:
    """Scheduled starts no user took: how many, the first and the last one's time."""

    count: int = 0
    first: float = 0.0
    last: float = 0.0

    def waits(self, noticed: float) -> list[float]:
        """Seconds each dropped start had waited when the drop was noticed (a lower bound of its latency)."""
        spacing = (self.last - self.first) / (self.count - 1) if self.count > 1 else 0.0
        return [max(noticed - (self.first + index * spacing), 0.0) for index in range(self.count)]


class ArrivalClock:
    """This process's share of the schedule, handed to waiting users at each start's time."""

    def __init__(self, schedule: RateSchedule | LiveRate, share: Callable[[], float], started: float) -> None:
        self._schedule, self._share, self._started = schedule, share, started
        self._waiting: deque[AsyncResult] = deque()
        self._missed: Dropped = Dropped()
        self._first_waiter = Event()
        self.offered = 0
        self.dropped = 0
        self._dispatcher = gevent.spawn(self._dispatch)

    def rate(self, at: float) -> float:
        """This process's rate at epoch time ``at``."""
        return self._schedule.rate(at - self._started) * self._share()

    def next_start(self) -> tuple[float, Dropped]:
        """Wait (this user only) for the next scheduled start; also the starts dropped since the last call."""
        dropped, self._missed = self._missed, Dropped()
        waiter = AsyncResult()
        self._waiting.append(waiter)
        self._first_waiter.set()
        try:
            return waiter.get(), dropped
        except BaseException:  # stopped while waiting: no start is lost with it
            if waiter in self._waiting:
                self._waiting.remove(waiter)
            raise

    def stop(self) -> Dropped:
        """Stop offering starts; the drops no user has reported yet."""
        self._dispatcher.kill(block=False)
        dropped, self._missed = self._missed, Dropped()
        return dropped

    def _dispatch(self) -> None:
        self._first_waiter.wait()  # the schedule starts with the first user ready for work
        scheduled = time.time()
        while True:
            rate = self.rate(scheduled)
            if rate <= 0:  # no user yet: nothing is offered
                gevent.sleep(IDLE_STEP_SECONDS)
                scheduled = time.time()
                continue
            delay = scheduled - time.time()
            if delay > 0:
                gevent.sleep(delay)
            self.offered += 1
            if self._waiting:
                self._waiting.popleft().set(scheduled)
            else:
                self._drop(scheduled)
            scheduled += 1 / rate

    def _drop(self, scheduled: float) -> None:
        self.dropped += 1
        missed = self._missed
        self._missed = Dropped(missed.count + 1, missed.first if missed.count else scheduled, scheduled)
