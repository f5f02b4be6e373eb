"""Delivery audit: did the service store every log it acknowledged during the run?

The service acknowledges before it stores and may drop a batch whose flush failed, so after the
stop the audit counts the logs carrying this run's ``run_id`` (QueryLog filtered by metadata
only, ``limit=1``, reading ``total_count``: the real service's level-filter quirk breaks a query
by service_name) and polls until the count reaches the acknowledged number (plus the logs in
doubt), stops moving for the settle period, or the timeout runs out.

Exact when every call's outcome is known. A log *in doubt* belongs to a call whose answer never
arrived (a deadline, a cancel, a broken connection): the service may or may not have queued it.
Then loss is a range: ``lost_min`` logs are surely lost (acknowledged, not stored), ``lost_max``
may be (the in-doubt logs not found count too).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import grpc

from grpc_user.calls import METHOD_PATHS, QUERY_LOG, error_message, status_name
from grpc_user.pb import log_service_pb2 as pb

QUERY_PATH = METHOD_PATHS[QUERY_LOG]
POLL_SECONDS = 0.25
RETRYABLE = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"})


STATUSES = ("running", "ok", "in_doubt", "lost", "unsettled", "skipped", "error")


@dataclass
class AuditResult:
    """What the service stored of what it acknowledged.

    ``status``: ok (nothing missing); in_doubt (nothing acknowledged is missing, but up to
    ``lost_max`` logs of calls with an unknown outcome were not found); lost (``lost_min`` > 0:
    the count stood still below acked); unsettled (still storing when the timeout ran out);
    skipped; error (the audit could not count); running (still polling). ``lost`` = ``lost_min``.
    """

    run_id: str
    acked: int
    persisted: int
    lost: int
    unexpected: int
    settle_seconds: float
    status: str
    detail: str = ""
    in_doubt: int = 0
    lost_min: int = 0
    lost_max: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the ``_audit.json`` file)."""
        return asdict(self)

    def sentence(self) -> str:
        """The verdict first, in words."""
        acked = f"{self.acked:,} acknowledged logs"
        doubt = f" and {self.in_doubt:,} in doubt" if self.in_doubt else ""
        verdicts = {
            "running": f"settling: {self.persisted:,} of {acked}{doubt} stored after {self.settle_seconds:.1f} s",
            "ok": f"all {acked}{doubt} were stored",
            "in_doubt": f"all {acked} were stored; {self.lost_max:,} of the {self.in_doubt:,} logs in doubt were not "
                        "(their calls ended without an answer, so they may never have been queued): lost "
                        f"{self.lost_min:,}..{self.lost_max:,}",
            "lost": f"{self.lost_min:,} of {acked} were lost"
                    + (f" (up to {self.lost_max:,} with the logs in doubt)" if self.lost_max > self.lost_min else ""),
            "unsettled": f"{self.lost_max:,} of {acked}{doubt} were not stored yet when the audit gave up",
            "skipped": "skipped",
            "error": "could not count the stored logs",
        }
        return f"Delivery audit {self.status.upper()}: {verdicts.get(self.status, self.status)}"

    def summary(self) -> str:
        """One line for the end of a run."""
        return (
            f"{self.sentence()} (run_id={self.run_id} acked={self.acked} in_doubt={self.in_doubt} "
            f"persisted={self.persisted} lost={self.lost_min}..{self.lost_max} unexpected={self.unexpected} "
            f"settled after {self.settle_seconds:.1f} s){f': {self.detail}' if self.detail else ''}"
        )


def stored_count_request(run_id: str) -> bytes:
    """QueryLog counting this run's logs: metadata filter only, limit 1, total_count is the answer."""
    return pb.QueryLogRequest(metadata_filters={"run_id": run_id}, limit=1).SerializeToString()


def count_stored(call: Callable[[str, bytes], bytes], run_id: str) -> int:
    """How many logs the service stores with metadata run_id=<run_id>."""
    response = pb.QueryLogResponse.FromString(call(QUERY_PATH, stored_count_request(run_id)))
    if not response.success:
        raise RuntimeError(f"QueryLog answered success=false: {response.error_message or 'no message'}")
    return response.total_count


def skipped(run_id: str, acked: int, reason: str, in_doubt: int = 0) -> AuditResult:
    """The result when no audit runs (``--no-audit``)."""
    return AuditResult(run_id, acked, 0, 0, 0, 0.0, "skipped", reason, in_doubt)


def verdict(run_id: str, acked: int, in_doubt: int, count: int, settle_seconds: float, settled: bool,
            detail: str = "") -> AuditResult:  # fmt: skip
    """The audit's figures from the final count; ``settled``: the count stood still (else the time ran out)."""
    lost_min, lost_max = max(acked - count, 0), max(acked + in_doubt - count, 0)
    if not lost_max:
        status = "ok"
    elif not settled:
        status = "unsettled"
    else:
        status = "lost" if lost_min else "in_doubt"
    unexpected = max(count - acked - in_doubt, 0)
    return AuditResult(run_id, acked, count, lost_min, unexpected, round(settle_seconds, 3), status, detail,
                       in_doubt, lost_min, lost_max)  # fmt: skip


def audit_delivery(
    call: Callable[[str, bytes], bytes],
    *,
    run_id: str,
    acked: int,
    timeout: float,
    settle: float,
    in_doubt: int = 0,
    sleep: Callable[[float], Any] = time.sleep,
    target: str = "",
    progress: Callable[[AuditResult], Any] | None = None,
    until_settled: bool = False,
) -> AuditResult:
    """Poll the stored count until it reaches ``acked + in_doubt``, stands still ``settle`` s, or ``timeout`` s pass.

    ``until_settled``: ``acked`` is only a lower bound (a worker's final counts never arrived), so reaching it
    proves nothing: wait for the count to stand still, and the logs found beyond it count as unexpected.
    """
    started = time.monotonic()
    last_count, last_change, first_count = -1, started, 0
    while True:
        now = time.monotonic()
        try:
            count = count_stored(call, run_id)
        except grpc.RpcError as error:
            # A busy or flaky service (the very thing under test) gets retried until the timeout.
            if status_name(error) not in RETRYABLE or now - started >= timeout:
                return AuditResult(run_id, acked, 0, 0, 0, now - started, "error", error_message(error, target),
                                   in_doubt)  # fmt: skip
            sleep(POLL_SECONDS)
            continue
        except RuntimeError as error:
            return AuditResult(run_id, acked, 0, 0, 0, now - started, "error", str(error), in_doubt)
        if last_count < 0:
            first_count = count
        if count != last_count:
            last_count, last_change = count, now
        if progress is not None:
            progress(AuditResult(run_id, acked, count, 0, 0, round(now - started, 1), "running", "", in_doubt))
        reached = count >= acked + in_doubt and not until_settled
        if reached or now - last_change >= settle or now - started >= timeout:
            break
        sleep(POLL_SECONDS)
    settled = count >= acked + in_doubt or now - last_change >= settle
    result = verdict(run_id, acked, in_doubt, count, last_change - started, settled)
    if result.status == "unsettled":
        result.detail = _still_storing(count - first_count, now - started, result.lost_max, timeout)
    return result


def _still_storing(stored_meanwhile: int, seconds: float, missing: int, timeout: float) -> str:
    rate = stored_meanwhile / seconds if seconds > 0 else 0.0
    if rate <= 0:
        return f"--audit-timeout {timeout:g} s ran out"
    return (f"still storing {rate:,.0f} logs/s when --audit-timeout {timeout:g} s ran out; "
            f"about {missing / rate:,.0f} s more needed: raise --audit-timeout")
