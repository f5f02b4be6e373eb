"""The delivery audit of this run as the Locust process runs it, over the run's own channels: overall, and per
phase of a run with ``--action``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import grpc

from grpc_user.locust.audit.barrier import Call
from grpc_user.locust.audit.delivery import AuditResult, audit_delivery, skipped, undecided
from grpc_user.locust.audit.phases import audit_phases
from grpc_user.locust.audit.stored_count import AUDIT_QUERY_TIMEOUT_SECONDS, audit_call
from grpc_user.locust.run.state import SuiteRun
from grpc_user.locust.run.target import peer_call, run_target
from grpc_user.locust.transport.bridge import LoopStopped

logger = logging.getLogger(__name__)


def delivery_audit(
    environment: Any, run: SuiteRun, progress: Callable[[AuditResult], Any] | None = None
) -> AuditResult:
    """Count what the service stored of what it acknowledged (and of the logs in doubt) in this run."""
    settings, acked, in_doubt = run.settings, run.counter.audit_acked, run.counter.audit_in_doubt
    if not settings.audit:
        return skipped(settings.run_id, acked, "--no-audit", in_doubt)
    logger.info("Delivery audit: waiting for %d acknowledged logs (and %d in doubt) of run %s to be stored",
                acked, in_doubt, settings.run_id)  # fmt: skip
    try:
        call, (writes, unreached) = audit_call(environment, run), barrier_writes(environment, run)
    except LoopStopped as error:  # this process can make no call at all: the audit cannot count
        return undecided("error", settings.run_id, acked, in_doubt, -1, 0.0, str(error),
                         run.workers_without_final_counts)  # fmt: skip
    return audit_delivery(
        call,
        run_id=settings.run_id,
        acked=acked,
        in_doubt=in_doubt,
        timeout=settings.audit_timeout,
        settle=settings.audit_settle,
        target=str(run_target(environment)),
        progress=progress,
        unreported_workers=run.workers_without_final_counts,
        interrupted_by=lambda: run.audit_interrupted_by,
        sleep=run.audit_interrupt.wait,
        barrier_writes=writes,
        unreached=unreached,
    )


def barrier_writes(environment: Any, run: SuiteRun) -> tuple[dict[str, Call], list[str]]:
    """Server -> a call to it alone, for the audit's barriers: every server the run's calls reached (grpc's counts,
    ``counts/peers.py``) and every server the target lists, each queueing what it acknowledged apart; one server or
    none known (no call reached one): the run's own channel, named by the server or the target. Then the listed
    servers no call of the run reached (no call started there: a dead replica), which hold none of its logs and need
    no barrier; none while a worker's counts are missing (its calls may have reached them) or when no listed server
    was reached at all."""
    target = run_target(environment)
    reached = run.peers.reached
    peers = sorted(reached | set(target.listed_peers))
    if len(peers) <= 1 and not target.listed_peers:
        return {peers[0] if peers else str(target): audit_call(environment, run)}, []
    unreached = [peer for peer in target.listed_peers if peer not in reached]
    if run.workers_without_final_counts or len(unreached) == len(peers):
        unreached = []
    timeout = max(run.settings.grpc_timeout, AUDIT_QUERY_TIMEOUT_SECONDS)
    return {peer: peer_call(run, target, peer, timeout) for peer in peers if peer not in unreached}, unreached


def delivery_audit_by_phase(environment: Any, run: SuiteRun, overall: AuditResult) -> list[dict[str, Any]]:
    """The audit of each phase of a run with ``--action`` ([] without actions, or when a count failed: logged)."""
    if not run.settings.actions.actions:
        return []
    try:
        return audit_phases(audit_call(environment, run), overall, run.phases, run.settings.actions.actions)
    except (grpc.RpcError, RuntimeError, LoopStopped) as error:
        logger.error("Delivery audit per phase failed: %s", error)
        return []
