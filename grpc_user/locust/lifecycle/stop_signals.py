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
import os
import signal
import sys
import time
from functools import partial
from types import FrameType
from typing import Any

import gevent
from gevent.event import Event
from locust.runners import STATE_CLEANUP, STATE_INIT, STATE_RUNNING, STATE_SPAWNING, STATE_STOPPING, MasterRunner

from grpc_user.locust.lifecycle.stop_once import test_stop_pending
from grpc_user.locust.preflight import cut_preflight
from grpc_user.locust.run.csv_files import (
    csv_prefix_of_command_line,
    remove_csv_files_of_no_test,
    remove_locust_csv_files,
)
from grpc_user.locust.run.exit_codes import FAILED
from grpc_user.locust.run.state import SuiteRun, suite_run

logger = logging.getLogger(__name__)
# Runner states in which a test runs or is ending (its calls in flight finishing): a repeated signal is news then.
TEST_UNDER_WAY = (STATE_SPAWNING, STATE_RUNNING, STATE_STOPPING, STATE_CLEANUP)


_startup_sigint_installed = False
_launcher_pid: int | None = None


def launcher_pid() -> int | None:
    """The pid of the process whose command line Locust parsed, recorded before it forks its ``--processes``
    workers (None before that): a worker forked by a launcher that died meanwhile has that parent no more."""
    return _launcher_pid


def install_startup_sigint() -> None:
    """Ctrl-C while Locust starts, from its command line's parsing to its init event (it forks its ``--processes``
    workers and makes its runner there; Locust's own answer is a KeyboardInterrupt traceback): one line from the
    process that took it, none of the --csv files Locust opened meanwhile, exit 1 at once (its forked workers quit
    silently), no test ran. ``install_stop_signals`` takes over at init. Once per process: Locust builds its parser
    again later (the web UI's extra arguments)."""
    global _startup_sigint_installed, _launcher_pid
    if not _startup_sigint_installed:
        _startup_sigint_installed, _launcher_pid = True, os.getpid()
        # Files' times come from the kernel's coarse clock, up to a tick behind time.time(): a margin of 0.1 s.
        signal.signal(signal.SIGINT, partial(_sigint_at_startup, os.getpid(), time.time() - 0.1))


def _sigint_at_startup(parent: int, since: float, signum: int, frame: FrameType | None) -> None:
    # os._exit, not SystemExit: the signal can land anywhere, in a fork's handlers too, where an exception is ignored
    # (a master then hung, its workers looking for it: 2 of 21 Ctrl-Cs 16-30 ms after "Starting Locust").
    if os.getpid() == parent:
        remove_locust_csv_files(csv_prefix_of_command_line(), since)
        sys.stderr.write("locust: error: SIGINT while Locust was starting: no test ran\n")
        sys.stderr.flush()
    os._exit(FAILED)


def install_stop_signals(environment: Any) -> None:
    """Take Ctrl-C (SIGINT) for the suite; SIGTERM stays Locust's, its repeats are caught in ``enter_shutdown``."""
    gevent.signal_handler(signal.SIGINT, on_sigint, environment)


def on_sigint(environment: Any) -> None:
    """Ctrl-C: the first starts Locust's shutdown in its main greenlet (and cuts a preflight under way short: in an
    unattended run's init, that alone ends the process); a later one is a repeat."""
    run = suite_run(environment)
    if run.preflight_waiter is not None and not run.preflight_cut_by:
        cut_preflight(run, "SIGINT")
        if run.preflight_waiter is gevent.get_hub().parent:  # headless: the refused preflight exits
            return
    if run.quitting_greenlet is None and not run.interrupt_sent:
        hub = gevent.get_hub()
        main = hub.parent
        if main is not None and not main.dead:
            run.interrupt_sent = True
            if waiting_for_workers(environment):
                gevent.spawn(quit_before_the_test, environment, main)
            else:
                hub.loop.run_callback(main.throw, KeyboardInterrupt())
        return
    repeated_stop_signal(environment, run, "SIGINT")


def waiting_for_workers(environment: Any) -> bool:
    """A headless master still waiting for its workers (``--expect-workers``, or ``--processes`` forking them): its
    main greenlet sleeps in Locust's ``start_automatic_run``, where a KeyboardInterrupt is a traceback and leaves the
    workers connected so far running (Locust's own TODO there)."""
    runner = environment.runner
    options = environment.parsed_options
    return (
        isinstance(runner, MasterRunner)
        and runner.state == STATE_INIT
        and bool(getattr(options, "headless", False) or getattr(options, "autostart", False))
    )


def quit_before_the_test(environment: Any, main: Any) -> None:
    """Ctrl-C before the test started: one line, the workers connected so far told to quit, no --csv files left,
    exit 1 (no test ran)."""
    runner = environment.runner
    logger.error("SIGINT while the master waited for its workers (%d of %d still connected): no test ran",
                 len(runner.clients.ready), getattr(environment.parsed_options, "expect_workers", 0))  # fmt: skip
    runner.quit()
    remove_csv_files_of_no_test(environment)
    main.throw(SystemExit(FAILED))


def repeated_stop_signal(environment: Any, run: SuiteRun, name: str) -> None:
    """A stop signal while the shutdown is under way: cut the audit short if it polls, else say the stop goes on;
    with no test under way (an idle web UI, a worker between tests), it is Locust's own quit: nothing to say."""
    if run.audit_greenlet is not None and not run.audit_greenlet.dead and not run.audit_interrupted_by:
        run.audit_interrupted_by = name
        run.audit_interrupt.set()
        return
    runner = environment.runner
    # Locust may mark its runner stopped while the suite still ends the test (calls in flight, the files): under way.
    if runner is None or (runner.state not in TEST_UNDER_WAY and not test_stop_pending(run)):
        logger.debug("%s: no test is under way; Locust quits", name)
        return
    logger.warning("%s: the test is already stopping: calls in flight finish (within --grpc-timeout %g s) and are "
                   "counted, then the audit and the files; a signal during the audit cuts it short", name,
                   run.settings.grpc_timeout)  # fmt: skip


def ignore_sigint_from_now() -> None:
    """At the end of ``quitting``, the test's stop, audit, summary and files done: a Ctrl-C from now on is ignored, as
    ``repeated_stop_signal`` ignores one with no test under way. Locust's last steps (its tables printed, its files
    closed, the exit) dispatch no signal through gevent: a Ctrl-C there ended the process by SIGINT (exit -2, 130 in a
    shell) instead of its exit code. The quit waited a second for Locust's --csv writer before, where a repeat was
    dispatched; it writes the files at once now (``write_final_figures``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def enter_shutdown(environment: Any, run: SuiteRun) -> bool:
    """At the start of ``quitting``: True for the process's one shutdown. A second one (Locust runs its shutdown for
    each SIGTERM) counts as a repeated SIGTERM, then waits here, printing nothing, until the first ends the
    process."""
    current = gevent.getcurrent()
    if run.quitting_greenlet is None:
        run.quitting_greenlet = current
        return True
    if run.quitting_greenlet is current:
        return True
    repeated_stop_signal(environment, run, "SIGTERM")
    Event().wait()  # the first shutdown exits the process; this greenlet never resumes
    return False


def reset_audit_interrupt(run: SuiteRun) -> None:
    """A new test's audit starts uninterrupted."""
    run.audit_interrupted_by = ""
    run.audit_interrupt = Event()
