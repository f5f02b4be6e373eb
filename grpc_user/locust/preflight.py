"""The preflight: before users spawn, does the target answer as a LogService? With a short deadline, over the
run's own channels. A stop signal (Ctrl-C, SIGTERM) during it cuts it short: the test is refused as unanswered."""

from __future__ import annotations

import signal
import time
from typing import Any

import gevent
from gevent.event import Event

from grpc_user.health import check
from grpc_user.locust.run.state import SuiteRun
from grpc_user.locust.run.target import run_target, target_call
from grpc_user.results import HealthResult

PREFLIGHT_TIMEOUT_SECONDS = 3.0
# How long the end of a run waits for a preflight still under way (it ends by its own deadline before that).
PREFLIGHT_WAIT_SECONDS = PREFLIGHT_TIMEOUT_SECONDS + 2.0
POLL_SECONDS = 0.05


def preflight(environment: Any, run: SuiteRun) -> HealthResult:
    """Check that the target answers as a LogService, within ``PREFLIGHT_TIMEOUT_SECONDS`` (or ``--grpc-timeout``
    when shorter); raises ValueError for a malformed target."""
    target = run_target(environment)
    timeout = min(PREFLIGHT_TIMEOUT_SECONDS, run.settings.grpc_timeout)
    return check(target_call(run, target, timeout), str(target))


def target_problem(environment: Any, run: SuiteRun) -> str:
    """Why the target cannot be load-tested, in one line starting ``--host:`` for a malformed one ('' when it
    answers as a LogService). A stop signal during the preflight makes it a problem too (``run.preflight_cut_by``
    then names the signal)."""
    try:
        target = run_target(environment)
    except ValueError as error:
        return f"--host: {error}"
    started = time.monotonic()
    result = answer_unless_cut(environment, run)
    if result is None:
        return (f"the preflight was cut short by {run.preflight_cut_by} after {time.monotonic() - started:.1f} s: "
                f"target {target} had not answered; no test ran")  # fmt: skip
    return "" if result.serving else f"target {result.target} is not serving the log service: {result.detail}"


def answer_unless_cut(environment: Any, run: SuiteRun) -> HealthResult | None:
    """The preflight's answer, or None when a stop signal cut the wait short (``cut_preflight``). The check runs in
    a greenlet of its own, so no signal ever raises inside its call: a cut one ends by its own deadline, unread.
    SIGTERM cuts it too (Locust installs its own SIGTERM handler only after its init event, which runs the
    preflight of an unattended run)."""
    run.preflight_cut_by, run.preflight_cut = "", Event()
    run.preflight_waiter = gevent.getcurrent()
    checking = gevent.spawn(preflight, environment, run)
    sigterm = gevent.signal_handler(signal.SIGTERM, cut_preflight, run, "SIGTERM")
    try:
        gevent.wait([checking, run.preflight_cut], count=1)
    finally:
        sigterm.cancel()
        run.preflight_waiter = None
    return None if run.preflight_cut_by else checking.get()


def cut_preflight(run: SuiteRun, name: str) -> None:
    """A stop signal ``name`` ('SIGINT', 'SIGTERM') during the preflight: its wait ends at once, without an answer."""
    if run.preflight_waiter is not None and not run.preflight_cut_by:
        run.preflight_cut_by = name
        run.preflight_cut.set()


def wait_for_preflight(run: SuiteRun) -> None:
    """At the quit: let a preflight under way (a web UI's test being started) end and its test be refused first."""
    deadline = time.monotonic() + PREFLIGHT_WAIT_SECONDS
    while run.preflight_waiter not in (None, gevent.getcurrent()) and time.monotonic() < deadline:
        gevent.sleep(POLL_SECONDS)
