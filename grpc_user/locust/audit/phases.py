"""The delivery audit per phase of a run with ``--action``: what each action cost.

After the run's audit has settled, one QueryLog per phase counts the logs carrying both the run id
and ``phase=N`` (metadata filters only, ``limit=1``), and the audit's own ``verdict`` turns that phase's
acknowledged and in-doubt counts and the stored count into its figures. The verdict names the action:
``after "kubectl rollout restart …" at 30 s: 712 of 40,100 acknowledged logs lost``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from grpc_user.calls import METHOD_PATHS, QUERY_LOG
from grpc_user.entries import RUN_ID_KEY
from grpc_user.locust.audit.delivery import AuditResult, verdict
from grpc_user.locust.counts.phases import METADATA_KEY, PhaseCounts, PhaseLogs
from grpc_user.locust.settings.action_plan import Action
from grpc_user.pb import log_service_pb2 as pb

QUERY_PATH = METHOD_PATHS[QUERY_LOG]
# The run's audit could not count, did not run, or was cut short: no phase is counted either.
NOT_COUNTED = ("error", "skipped", "interrupted")


def stored_in_phase(call: Callable[[str, bytes], bytes], run_id: str, phase: int) -> int:
    """How many logs the service stores with metadata run_id=<run_id> and phase=<phase>."""
    request = pb.QueryLogRequest(metadata_filters={RUN_ID_KEY: run_id, METADATA_KEY: str(phase)}, limit=1)
    response = pb.QueryLogResponse.FromString(call(QUERY_PATH, request.SerializeToString()))
    if not response.success:
        raise RuntimeError(f"QueryLog answered success=false: {response.error_message or 'no message'}")
    return response.total_count


def phase_name(action: Action | None) -> str:
    """``before the first action`` or ``after "COMMAND" at 30 s``."""
    return "before the first action" if action is None else f"after {action.label()}"


def phase_words(result: AuditResult) -> str:
    """A phase's verdict in words, without the run-level preamble."""
    acked = f"{result.acked:,} acknowledged logs"
    if result.status == "ok":
        return f"all {acked} stored" + (f" (and all {result.in_doubt:,} in doubt)" if result.in_doubt else "")
    if result.status == "in_doubt":
        return (f"{result.missing:,} of the {acked} and {result.in_doubt:,} in doubt not stored, "
                f"0..{min(result.missing, result.acked):,} of them acknowledged")  # fmt: skip
    if result.status == "lost":
        if result.lost_max is None:
            at_least = "at least " if result.unreported_workers else ""
            return f"at least {result.lost_min:,} of {at_least}{acked} lost ({result.unknown_bound_cause()})"
        more = f" (up to {result.lost_max:,} with the logs in doubt)" if result.lost_max > result.lost_min else ""
        return f"{result.lost_min:,} of {acked} lost{more}"
    if result.status == "unsettled":
        return f"{result.missing:,} of {acked} not stored yet when the audit gave up"
    if result.status == "incomplete":
        at_least = "at least " if result.unreported_workers else ""
        return f"{at_least}{acked}, {result.persisted:,} stored ({result.unknown_bound_cause()})"
    return result.status


def audit_phases(call: Callable[[str, bytes], bytes], overall: AuditResult, phases: PhaseCounts,
                 actions: Sequence[Action]) -> list[dict[str, Any]]:  # fmt: skip
    """One audit per phase (0 and one per action), as JSON-ready dicts with a ``sentence``; [] when the run's audit
    could not count. Raises grpc.RpcError or RuntimeError when a phase's count fails."""
    if overall.status in NOT_COUNTED:
        return []
    settled = overall.status != "unsettled"
    by_number = {action.phase: action for action in actions}
    results = []
    for phase in sorted(set(phases.by_phase) | {0} | set(by_number)):
        logs = phases.by_phase.get(phase, PhaseLogs())
        count = stored_in_phase(call, overall.run_id, phase)
        result = verdict(overall.run_id, logs.audit_acked, logs.audit_in_doubt, count, overall.settle_seconds, settled,
                         unreported_workers=overall.unreported_workers)  # fmt: skip
        action = by_number.get(phase)
        sentence = f"{phase_name(action)}: {phase_words(result)}"
        results.append({"phase": phase, "action": None if action is None else action.command,
                        "at": None if action is None else action.at, "sent": logs.sent, "rejected": logs.rejected,
                        **result.as_dict(), "sentence": sentence})  # fmt: skip
    return results
