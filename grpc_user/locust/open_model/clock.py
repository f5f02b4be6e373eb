"""The open model's clock: calls start on a schedule that does not wait for answers (like k6's
constant-arrival-rate or wrk2), and each call's latency counts from when it should have started.

The rate is a total over every process. Each process takes its share in proportion to the users it
runs (``-u`` is the most calls in flight at once), so the shares add up to the rate exactly however
users are spread over workers. A dispatcher greenlet hands each scheduled start, at its time, to a
user waiting for work; a start that finds no user waiting is **dropped** and counted by cause
(``grpc_user.locust.counts.arrivals``), never silently delayed. Nothing is handed out ahead of time,
so a changed rate (the capacity search's steps) takes effect within one interval.

The dispatcher never starves gevent's hub, whatever the rate: each of its turns hands the starts due
by now to the users waiting (at most one per user) and counts the rest as drops in one addition, then
sleeps; above ``1 / TICK_SECONDS`` calls/s it sleeps at least ``TICK_SECONDS`` and dispatches the
starts due meanwhile together. Starts it reaches more than ``LATE_SECONDS`` after their time (the
process was too busy to run it on time) are dropped as ``GENERATOR_BEHIND``.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

import gevent
from gevent.event import AsyncResult, Event

from grpc_user.locust.counts.arrivals import GENERATOR_BEHIND, USERS_BUSY, USERS_NOT_READY, ArrivalCounter
from grpc_user.locust.settings.rates import RateSchedule

# With no rate (no users yet), look again this much later.
IDLE_STEP_SECONDS = 0.05
# The dispatcher's turn at high rates: it yields to the hub at least this often, and dispatches in bulk.
TICK_SECONDS = 0.002
# A start the dispatcher reaches this late was not dispatched on time: the process could not keep up.
LATE_SECONDS = 0.25


class LiveRate:
    """A rate changed while the test runs (the capacity search's steps): calls per second in total."""

    def __init__(self, value: float) -> None:
        self.value = value

    def rate(self, elapsed: float) -> float:
        """The rate now, whatever the time."""
        return self.value

    def __str__(self) -> str:
        return f"{self.value:g} (live)"


class ArrivalClock:
    """This process's share of the schedule, handed to waiting users at each start's time.

    ``share()``: this process's fraction of the total rate; ``users()``: users running here (a drop
    is ``USERS_BUSY`` when there are users and each of them holds a start whose call has not ended, else
    ``USERS_NOT_READY``: none here is ready, none at all included);
    ``closed()``: no call may start any more (``--max-requests`` reached): the starts no user takes then
    are not offered, so not dropped either.
    """

    def __init__(self, schedule: RateSchedule | LiveRate, share: Callable[[], float], started: float,
                 counter: ArrivalCounter, users: Callable[[], int],
                 closed: Callable[[], bool] = lambda: False) -> None:  # fmt: skip
        self._schedule, self._share, self._started = schedule, share, started
        self._counter, self._users, self._closed = counter, users, closed
        self._waiting: deque[AsyncResult] = deque()
        self._first_waiter = Event()
        self._busy = 0
        self._dispatcher = gevent.spawn(self._dispatch)

    def rate(self, at: float) -> float:
        """This process's rate in calls/s at epoch time ``at``."""
        return self._schedule.rate(at - self._started) * self._share()

    def next_start(self) -> float:
        """Wait (this user only) for the next scheduled start: its epoch time. Pair with ``call_done``."""
        waiter: AsyncResult[float] = AsyncResult()
        self._waiting.append(waiter)
        self._first_waiter.set()
        try:
            return waiter.get()  # type: ignore[return-value]  # a blocking get gives the value (stubs: or None)
        except BaseException:  # stopped while waiting: no start is lost with it
            if waiter in self._waiting:
                self._waiting.remove(waiter)
            elif waiter.ready():  # handed a start it will not use
                self.call_done()
            raise

    def call_done(self) -> None:
        """The call of a start handed out by ``next_start`` has ended: its user is free again."""
        self._busy = max(self._busy - 1, 0)

    def stop(self) -> None:
        """Stop offering starts."""
        self._dispatcher.kill(block=False)

    def _dispatch(self) -> None:
        self._first_waiter.wait()  # the schedule starts with the first user ready for work
        scheduled = time.time()  # the next start's time
        while True:
            rate = self.rate(scheduled)
            if rate <= 0:  # no user yet, or the capacity search offers nothing: nothing is offered
                gevent.sleep(IDLE_STEP_SECONDS)
                scheduled = time.time()
                continue
            now = time.time()
            scheduled = self._drop_until(scheduled, now - LATE_SECONDS, rate, GENERATOR_BEHIND)
            while scheduled <= now and self._waiting:
                self._busy += 1
                self._counter.add_made()
                self._waiting.popleft().set(scheduled)
                scheduled += 1 / rate
            users = self._users()
            cause = USERS_BUSY if users and self._busy >= users else USERS_NOT_READY
            scheduled = self._drop_until(scheduled, now, rate, cause)
            gevent.sleep(max(scheduled - time.time(), TICK_SECONDS if rate * TICK_SECONDS >= 1 else 0.0))

    def _drop_until(self, scheduled: float, until: float, rate: float, cause: str) -> float:
        """Drop, in one count, every start from ``scheduled`` up to ``until``; the next start's time."""
        if scheduled > until:
            return scheduled
        missed = math.floor((until - scheduled) * rate) + 1
        if not self._closed():
            self._counter.add_dropped(cause, missed)
        return scheduled + missed / rate
