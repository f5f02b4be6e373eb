"""Ctrl-C and SIGTERM at the end of a run: the first starts the stop, a repeat never loses the run's files.

The first Ctrl-C raises KeyboardInterrupt in Locust's main greenlet, as Locust expects (never in whichever
greenlet happens to run: the gRPC bridge's loop, a user mid-call); the first SIGTERM is Locust's own to handle.
Either way Locust runs its shutdown, whose ``quitting`` listener stops the users, lets calls in flight finish,
waits for the audit and writes the files. A signal that arrives once that shutdown is under way (a second Ctrl-C,
a SIGTERM after a Ctrl-C, a terminal's and a wrapper's copies of one signal) starts nothing new:

- while the delivery audit polls, it cuts the audit short: ``interrupted``, with the counts so far, one line;
- otherwise (users stopping, calls in flight finishing, files being written) one line says the stop goes on.

Locust runs its whole shutdown again for each SIGTERM; ``enter_shutdown`` keeps the repeat from printing or
exiting anything twice.
"""

from __future__ import annotations

import logging
import signal
from typing import Any

import gevent
from gevent.event import Event

from grpc_user.locust.run.state import SuiteRun, suite_run

logger = logging.getLogger(__name__)


def install_stop_signals(environment: Any) -> None:
    """Take Ctrl-C (SIGINT) for the suite; SIGTERM stays Locust's, its repeats are caught in ``enter_shutdown``."""
    gevent.signal_handler(signal.SIGINT, on_sigint, environment)


def on_sigint(environment: Any) -> None:
    """Ctrl-C: the first starts Locust's shutdown in its main greenlet; a later one is a repeat."""
    run = suite_run(environment)
    if run.quitting_greenlet is None and not run.interrupt_sent:
        hub = gevent.get_hub()
        main = hub.parent
        if main is not None and not main.dead:
            run.interrupt_sent = True
            hub.loop.run_callback(main.throw, KeyboardInterrupt())
        return
    repeated_stop_signal(run, "SIGINT")


def repeated_stop_signal(run: SuiteRun, name: str) -> None:
    """A stop signal while the shutdown is under way: cut the audit short if it polls, else say the stop goes on."""
    if run.audit_greenlet is not None and not run.audit_greenlet.dead and not run.audit_interrupted_by:
        run.audit_interrupted_by = name
        run.audit_interrupt.set()
        return
    logger.warning("%s: the test is already stopping: calls in flight finish (within --grpc-timeout %g s) and are "
                   "counted, then the audit and the files; a signal during the audit cuts it short", name,
                   run.settings.grpc_timeout)  # fmt: skip


def enter_shutdown(run: SuiteRun) -> bool:
    """At the start of ``quitting``: True for the process's one shutdown. A second one (Locust runs its shutdown for
    each SIGTERM) counts as a repeated SIGTERM, then waits here, printing nothing, until the first ends the
    process."""
    current = gevent.getcurrent()
    if run.quitting_greenlet is None:
        run.quitting_greenlet = current
        return True
    if run.quitting_greenlet is current:
        return True
    repeated_stop_signal(run, "SIGTERM")
    Event().wait()  # the first shutdown exits the process; this greenlet never resumes
    return False


def reset_audit_interrupt(run: SuiteRun) -> None:
    """A new test's audit starts uninterrupted."""
    run.audit_interrupted_by = ""
    run.audit_interrupt = Event()
