"""Whether a ``/swarm`` request may start a test: its form checked as the command line is, then, for a test that
would start, the target's preflight with the form's host and settings, all before Locust's ``/swarm`` view runs.

Locust's view answers ``success: true`` as soon as it spawned the runner's start; the preflight, run in
``test_start`` after that answer, could only stop the test it had announced (a CI job driving ``/swarm`` was told
a test against a dead target started). Refused here, the view never runs: no user spawns, no ``test_start``
fires, and the answer is Locust's own refusal, ``{"success": false, "message": <one line>}``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from gevent.lock import Semaphore
from locust.runners import STATE_RUNNING, STATE_SPAWNING

from grpc_user.calls import REQUEST_TYPE
from grpc_user.locust.preflight import target_problem
from grpc_user.locust.run.exit_codes import FAILED
from grpc_user.locust.run.known_end import set_test_end, swarm_run_time
from grpc_user.locust.run.state import suite_run
from grpc_user.locust.settings.values import OptionError
from grpc_user.locust.web.form import form_test

logger = logging.getLogger(__name__)

# One preflight at a time: the run has one preflight waiter for a stop signal to cut short.
_preflights = Semaphore()


def starts_a_test(environment: Any) -> bool:
    """A ``/swarm`` now starts a test (fires ``test_start``) rather than changing the users of one running."""
    runner = environment.runner
    return runner is not None and runner.state not in (STATE_RUNNING, STATE_SPAWNING)


def start_problem(environment: Any, web_ui: Any, form: Any) -> str:
    """Why the ``/swarm`` ``form`` is refused, in one line ('' when Locust's view may apply it): an option Locust
    or the suite refuses, or, when it starts a test, a target that does not answer as a LogService within the
    preflight's deadline (at most 3 s) or a stop signal that cut that wait short. A target's refusal is shown in
    the UI's failures too (``preflight``, not a request); a cut one makes the process exit 1."""
    try:
        host, settings = form_test(environment, web_ui, form)
    except OptionError as error:
        return str(error)
    if not starts_a_test(environment):
        return ""
    run = suite_run(environment)
    with _preflights:
        problem = target_problem(run, host, settings)
    if problem:
        environment.stats.log_error(REQUEST_TYPE, "preflight", problem)
        if run.preflight_cut_by:  # the process quits: this test had no answer
            environment.process_exit_code = FAILED
    return problem


def note_run_time(environment: Any, web_ui: Any, form: Any) -> None:
    """A ``/swarm`` Locust's view will apply: the test's end as its timer will have it. Locust's view times the test
    by the form's ``run_time`` alone (none when left empty, whatever ``-t`` said), restarts or cancels that timer on
    a ``/swarm`` of a running test, and sets none for a load shape: the test it starts takes that run time at its
    ``test_start``; a running test's end moves at once (workers hear of it with the spawn messages that follow)."""
    if web_ui.userclass_picker_is_active:
        shape_runs = form.get("shape_class", "Default") != "Default"
    else:
        shape_runs = environment.shape_class is not None
    run_time = None if shape_runs else swarm_run_time(form)
    if starts_a_test(environment):
        suite_run(environment).swarm_run_time = (run_time,)
    elif not shape_runs:
        set_test_end(environment, run_time, time.time())
