"""The preflight: before users spawn, does the target answer as a LogService? With a short deadline, over the
run's own channels."""

from __future__ import annotations

from typing import Any

from grpc_user.health import check
from grpc_user.locust.run.state import SuiteRun
from grpc_user.locust.run.target import run_target, target_call
from grpc_user.results import HealthResult

PREFLIGHT_TIMEOUT_SECONDS = 3.0


def preflight(environment: Any, run: SuiteRun) -> HealthResult:
    """Check that the target answers as a LogService, within ``PREFLIGHT_TIMEOUT_SECONDS`` (or ``--grpc-timeout``
    when shorter); raises ValueError for a malformed target."""
    target = run_target(environment)
    timeout = min(PREFLIGHT_TIMEOUT_SECONDS, run.settings.grpc_timeout)
    return check(target_call(run, target, timeout), str(target))


def target_problem(environment: Any, run: SuiteRun) -> str:
    """Why the target cannot be load-tested, in one line starting ``--host:`` for a malformed one ('' when it
    answers as a LogService)."""
    try:
        run_target(environment)
    except ValueError as error:
        return f"--host: {error}"
    result = preflight(environment, run)
    return "" if result.serving else f"target {result.target} is not serving the log service: {result.detail}"
