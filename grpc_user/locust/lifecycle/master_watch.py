"""A ``--processes`` worker whose parent is gone stops its load within seconds, instead of writing on.

Locust tells a forked worker nothing when the process that forked it dies (a SIGKILLed master, an OOM kill): the
worker is re-parented and runs on until Locust's ``MASTER_HEARTBEAT_TIMEOUT`` (60 s without a heartbeat from the
master; measured: 61 s for a ``--worker`` of its own and 62 s for forked ones, and a new-user check saw a SIGKILLed
master's two forked workers write 42,466 logs over 2.5 minutes). Here a forked worker checks its parent pid every
``WATCH_SECONDS``; once it changed, the worker stops its users (calls in flight end by their deadline; their
counts are sent nowhere: no master takes them) and quits with exit code 1, in one line saying why. A worker
started on its own (``--worker``, on another machine) keeps Locust's heartbeat timeout: only the missing
heartbeats tell it that a remote master is gone.

Before its init a forked worker cannot watch: Locust's ``WorkerRunner`` blocks while it connects to its master, up
to 300 s (``CONNECT_RETRY_COUNT`` x ``CONNECT_TIMEOUT``), and a launcher that quit meanwhile (a refused option, a
Ctrl-C while it waited for its workers) left its workers connecting on, to join the next test on that port (a new
user's: "the final counts of 4 worker(s) never arrived"). ``die_with_launcher_until_init`` has the kernel kill each
forked worker when its launcher dies (Linux's ``PR_SET_PDEATHSIG``), until its init hands over to the watch.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
from typing import Any, cast

import gevent
from greenlet import greenlet
from locust.runners import STATE_RUNNING, STATE_SPAWNING

from grpc_user.locust.lifecycle.stop_signals import launcher_pid
from grpc_user.locust.run.exit_codes import FAILED
from grpc_user.locust.run.state import SuiteRun

logger = logging.getLogger(__name__)

WATCH_SECONDS = 0.5
_registered = False
# prctl(2)'s option: the signal the kernel sends a process when its parent dies (0: none).
PR_SET_PDEATHSIG = 1


def _set_parent_death_signal(signum: int) -> None:
    prctl = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)  # Linux only; elsewhere the watch alone
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, signum)


def _die_with_launcher() -> None:
    launcher = launcher_pid()
    if launcher is None:  # a fork of a process that is no Locust launcher
        return
    _set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != launcher:  # it died before the signal was set
        os._exit(FAILED)


def die_with_launcher_until_init() -> None:
    """Before Locust forks its ``--processes`` workers, once the launcher's pid is recorded (``launcher_pid``): each
    is killed when the launcher that forked it dies, until its init (``watch_master`` then stops it with one line
    instead). Once per process."""
    global _registered
    if not _registered:
        _registered = True
        os.register_at_fork(after_in_child=_die_with_launcher)


def watch_master(environment: Any, run: SuiteRun) -> None:
    """At a worker's init: a ``--processes`` child starts watching its parent (the master or the launcher that
    forked it); other workers have nothing to watch."""
    if getattr(environment.parsed_options, "processes", None):
        _set_parent_death_signal(0)
        # The launcher's pid, not the parent's now: a launcher that died while it forked (a Ctrl-C at that moment,
        # a worker forked before the signal was handled) left this worker re-parented before its init.
        gevent.spawn(_watch_parent, environment, run, launcher_pid() or os.getppid())


def _watch_parent(environment: Any, run: SuiteRun, parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        if run.quitting_greenlet is not None:  # the worker quits anyway (its master's quit, a signal)
            return
        gevent.sleep(WATCH_SECONDS)
    run.master_lost = f"its parent process (pid {parent_pid}) is gone"
    logger.error("This worker lost its master (%s): it stops its users (their counts go nowhere) and quits (exit "
                 "code %d)", run.master_lost, FAILED)  # fmt: skip
    runner = environment.runner
    if runner.state in (STATE_SPAWNING, STATE_RUNNING):
        runner.stop()
    main = cast(greenlet, gevent.get_hub().parent)  # the hub runs under the main greenlet
    gevent.get_hub().loop.run_callback(main.throw, SystemExit(FAILED))
