"""The preflight: before users spawn, does the target answer as a LogService (with a short deadline), and is the run
id the user chose free in the service? Over the run's own channels. A stop signal (Ctrl-C, SIGTERM) during the check
cuts it short: the test is refused as unanswered."""

from __future__ import annotations

import signal
import time
from typing import Any

import gevent
import grpc
from gevent import Greenlet
from gevent.event import Event

from grpc_user.health import check
from grpc_user.locust.audit.stored_count import audit_call, count_stored
from grpc_user.locust.run.state import SuiteRun
from grpc_user.locust.run.target import host_target, target_call
from grpc_user.locust.settings.suite import SuiteSettings, choose_run_id
from grpc_user.locust.transport.bridge import LoopStopped
from grpc_user.results import HealthResult
from grpc_user.target import Target

PREFLIGHT_TIMEOUT_SECONDS = 3.0
# How long the end of a run waits for a preflight still under way (it ends by its own deadline before that).
PREFLIGHT_WAIT_SECONDS = PREFLIGHT_TIMEOUT_SECONDS + 2.0
POLL_SECONDS = 0.05


def preflight(run: SuiteRun, target: Target, settings: SuiteSettings) -> HealthResult:
    """Check that ``target`` answers as a LogService, within ``PREFLIGHT_TIMEOUT_SECONDS`` (or ``--grpc-timeout``
    when shorter), over a channel with the test's ``settings`` (security, load balancing, connections)."""
    timeout = min(PREFLIGHT_TIMEOUT_SECONDS, settings.grpc_timeout)
    return check(target_call(run, target, timeout, settings), str(target))


def target_problem(run: SuiteRun, host: str | None, settings: SuiteSettings) -> str:
    """Why the target ``host`` (``--host`` or the web UI form's; None or '': GRPC_SERVER_HOST/PORT) cannot be
    load-tested with ``settings``, in one line starting ``--host:`` for a malformed one ('' when it answers as a
    LogService). A stop signal during the preflight makes it a problem too (``run.preflight_cut_by`` then names the
    signal)."""
    try:
        target = host_target(host)
    except ValueError as error:
        return f"--host: {error}"
    started = time.monotonic()
    result = answer_unless_cut(run, target, settings)
    if result is None:
        return (f"the preflight was cut short by {run.preflight_cut_by} after {time.monotonic() - started:.1f} s, "
                f"before target {target} answered; no test ran")  # fmt: skip
    return "" if result.serving else f"target {result.target} is not serving the log service: {result.detail}"


def answer_unless_cut(run: SuiteRun, target: Target, settings: SuiteSettings) -> HealthResult | None:
    """The preflight's answer, or None when a stop signal cut the wait short (``cut_preflight``). The check runs in
    a greenlet of its own, so no signal ever raises inside its call: a cut one ends by its own deadline, unread.
    SIGTERM cuts it too (Locust installs its own SIGTERM handler only after its init event, which runs the
    preflight of an unattended run)."""
    run.preflight_cut_by, run.preflight_cut = "", Event()
    run.preflight_waiter = gevent.getcurrent()
    checking = gevent.spawn(preflight, run, target, settings)
    sigterm = gevent.signal_handler(signal.SIGTERM, cut_preflight, run, "SIGTERM")
    try:
        waited: list[Greenlet | Event] = [checking, run.preflight_cut]
        gevent.wait(waited, count=1)
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


def unused_run_id(environment: Any, run: SuiteRun, typed: str, used: set[str]) -> tuple[str, str]:
    """The run id of the test about to start when the user typed ``typed``: ``run.settings.run_id`` (``typed``,
    numbered past the ids this process ``used``), numbered on past every id of which the service already stores
    logs (an earlier run's, another process's test), as the audit would count them as this test's. Returns the id
    and the line that says so ('' when the first was free, or when the service could not count: then why)."""
    run_id, taken = run.settings.run_id, {}
    try:
        call = audit_call(environment, run)
        while stored := count_stored(call, run_id):
            taken[run_id] = stored
            run_id = choose_run_id(typed, used | set(taken))
    except (grpc.RpcError, RuntimeError, LoopStopped) as error:
        why = error.details() if isinstance(error, grpc.RpcError) else str(error)
        return run_id, (f"could not count the service's logs with run id {run_id!r} ({why}): if an earlier test used "
                        "it, the delivery audit counts its logs as this test's")  # fmt: skip
    if not taken:
        return run_id, ""
    (first, stored), *more = taken.items()
    others = "".join(f", {other!r} {count:,}" for other, count in more)
    return run_id, f"run id {first!r} already has {stored:,} logs in the service{others}: this test is {run_id!r}"
