"""A test's ``test_stop`` is handled once, after its users are gone, however many stops Locust runs for it.

Locust's ``Runner.stop`` is not guarded against a second stop while one is under way. A worker runs two when its own
Ctrl-C and its master's stop message meet: the second found the users already being killed, returned at once (gevent's
``Group.killone`` does not wait for a greenlet another caller is killing) and fired ``test_stop`` while the calls in
flight were still on the wire. The worker then sent final counts short of those calls, and the master audited on them
(``incomplete``: the service stored more logs than the run counted). Here the first ``test_stop`` of a test waits for
the users' greenlets to end (their calls in flight finish and are counted, ``grpc_user.locust.user.session``) before
the counts are final; a second one waits for the first to finish, so that nothing it does next (a worker's
``client_stopped``, Locust's quit) overtakes the final counts.
"""

from __future__ import annotations

import logging
from typing import Any

import gevent
from gevent.event import Event

from grpc_user.locust.run.state import SuiteRun

logger = logging.getLogger(__name__)

# Beyond the calls' own deadline (--grpc-timeout): the users' last counting and the greenlets' exit.
USERS_END_MARGIN_SECONDS = 2.0


def start_test(run: SuiteRun) -> None:
    """A new test: its ``test_stop`` is still to come."""
    run.test_stop_greenlet = None
    run.test_stopped = Event()


def begin_test_stop(run: SuiteRun) -> bool:
    """At ``test_stop``: True for the test's first one (the caller handles it, then calls ``end_test_stop``); for a
    later one, wait until the first is handled (at most the calls' deadline and a margin) and return False."""
    if run.test_stop_greenlet is None:
        run.test_stop_greenlet = gevent.getcurrent()
        return True
    if run.test_stop_greenlet is not gevent.getcurrent():
        run.test_stopped.wait(users_end_timeout(run) + USERS_END_MARGIN_SECONDS)
    return False


def end_test_stop(run: SuiteRun) -> None:
    """The test's ``test_stop`` is handled: the final counts are sent (a worker) or the audit started."""
    run.test_stopped.set()


def test_stop_pending(run: SuiteRun) -> bool:
    """A test ran and its ``test_stop`` is not handled yet (its users may be finishing their calls)."""
    return bool(run.started_at) and not run.test_stopped.is_set()


def wait_for_users(runner: Any, run: SuiteRun) -> None:
    """Until every user greenlet but the caller's own has ended (its call in flight answered and counted), at most
    --grpc-timeout and a margin; users still running then are named in a warning and left to Locust."""
    current = gevent.getcurrent()
    users = [greenlet for greenlet in runner.user_greenlets if greenlet is not current]
    if not users:
        return
    ended = gevent.joinall(users, timeout=users_end_timeout(run))
    if len(ended) < len(users):
        logger.warning("%d user(s) still running %.0f s after the stop: the counts leave out their calls in flight",
                       len(users) - len(ended), users_end_timeout(run))  # fmt: skip


def users_end_timeout(run: SuiteRun) -> float:
    """Seconds a stop waits for the users' calls in flight: their deadline and a margin."""
    return run.settings.grpc_timeout + USERS_END_MARGIN_SECONDS
