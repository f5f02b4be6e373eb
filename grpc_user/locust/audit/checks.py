"""Preflight and delivery audit as the Locust process runs them, over the suite's own transport."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import grpc

from grpc_user.health import check
from grpc_user.locust.audit.delivery import AuditResult, audit_delivery, count_stored, skipped, undecided
from grpc_user.locust.audit.phases import audit_phases
from grpc_user.locust.run.state import SuiteRun
from grpc_user.locust.transport.bridge import LoopStopped
from grpc_user.results import HealthResult
from grpc_user.settings import default_target
from grpc_user.target import Target, parse_target

logger = logging.getLogger(__name__)
PREFLIGHT_TIMEOUT_SECONDS = 3.0
# The audit counts with a deadline of its own: a load's --grpc-timeout may be far shorter than a count takes.
AUDIT_QUERY_TIMEOUT_SECONDS = 10.0


def run_target(environment: Any) -> Target:
    """The target of this run: ``--host``, else GRPC_SERVER_HOST/PORT (raises ValueError if malformed)."""
    return parse_target(environment.host or default_target())


def _bytes_call(run: SuiteRun, target: Target, timeout: float) -> Any:
    settings = run.settings
    transport = run.transports.shared(
        target, settings.security, lb_policy=settings.grpc_lb, connections=settings.grpc_connections
    )
    return lambda path, payload: transport.unary(path, payload, timeout)


def preflight(environment: Any, run: SuiteRun) -> HealthResult:
    """Check that the target answers as a LogService, with a short deadline."""
    target = run_target(environment)
    timeout = min(PREFLIGHT_TIMEOUT_SECONDS, run.settings.grpc_timeout)
    return check(_bytes_call(run, target, timeout), str(target))


def stored_count(environment: Any, run: SuiteRun) -> int:
    """How many logs of this test the service stores now (the audit's count)."""
    target = run_target(environment)
    timeout = max(run.settings.grpc_timeout, AUDIT_QUERY_TIMEOUT_SECONDS)
    return count_stored(_bytes_call(run, target, timeout), run.settings.run_id)


def delivery_audit(
    environment: Any, run: SuiteRun, progress: Callable[[AuditResult], Any] | None = None
) -> AuditResult:
    """Count what the service stored of what it acknowledged (and of the logs in doubt) in this run."""
    settings, acked, in_doubt = run.settings, run.counter.audit_acked, run.counter.audit_in_doubt
    if not settings.audit:
        return skipped(settings.run_id, acked, "--no-audit", in_doubt)
    target = run_target(environment)
    logger.info("Delivery audit: waiting for %d acknowledged logs (and %d in doubt) of run %s to be stored",
                acked, in_doubt, settings.run_id)  # fmt: skip
    try:
        call = _bytes_call(run, target, max(settings.grpc_timeout, AUDIT_QUERY_TIMEOUT_SECONDS))
    except LoopStopped as error:  # this process can make no call at all: the audit cannot count
        return undecided("error", settings.run_id, acked, in_doubt, -1, 0.0, str(error))
    result = audit_delivery(
        call,
        run_id=settings.run_id,
        acked=acked,
        in_doubt=in_doubt,
        timeout=settings.audit_timeout,
        settle=settings.audit_settle,
        target=str(target),
        progress=progress,
        until_settled=bool(run.workers_without_final_counts),
        interrupted_by=lambda: run.audit_interrupted_by,
        sleep=run.audit_interrupt.wait,
    )
    if run.workers_without_final_counts and not result.detail:
        result.detail = (f"the final counts of {len(run.workers_without_final_counts)} worker(s) never arrived: "
                         "acknowledged is a lower bound, and the stored logs beyond it are theirs")  # fmt: skip
    return result


def delivery_audit_by_phase(environment: Any, run: SuiteRun, overall: AuditResult) -> list[dict[str, Any]]:
    """The audit of each phase of a run with ``--action`` ([] without actions, or when a count failed: logged)."""
    if not run.settings.actions.actions:
        return []
    target = run_target(environment)
    try:
        call = _bytes_call(run, target, max(run.settings.grpc_timeout, AUDIT_QUERY_TIMEOUT_SECONDS))
        return audit_phases(call, overall, run.phases, run.settings.actions.actions)
    except (grpc.RpcError, RuntimeError, LoopStopped) as error:
        logger.error("Delivery audit per phase failed: %s", error)
        return []
