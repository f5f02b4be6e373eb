"""Delivery audit: did the service store every log it acknowledged during the run?

The service acknowledges before it stores and may drop a batch whose flush failed, so after the
stop the audit counts the logs carrying this run's ``run_id`` (QueryLog filtered by metadata
only, ``limit=1``, reading ``total_count``: the real service's level-filter quirk breaks a query
by service_name) and polls until the count reaches the acknowledged number, stops moving for
the settle period, or the timeout runs out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import grpc

from grpc_user.calls import QUERY_LOG, SERVICE, error_message, status_name
from grpc_user.pb import log_service_pb2 as pb

QUERY_PATH = f"/{SERVICE}/{QUERY_LOG}"
POLL_SECONDS = 0.25
RETRYABLE = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"})


@dataclass
class AuditResult:
    """What the service stored of what it acknowledged.

    ``status``: ok; lost (the count stood still below acked); unsettled (still storing when the
    timeout ran out: ``lost`` logs not found *yet*); skipped; error.
    """

    run_id: str
    acked: int
    persisted: int
    lost: int
    unexpected: int
    settle_seconds: float
    status: str
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the ``_audit.json`` file)."""
        return asdict(self)

    def summary(self) -> str:
        """One line for the end of a run."""
        return (
            f"Delivery audit {self.status.upper()}: run_id={self.run_id} acked={self.acked} "
            f"persisted={self.persisted} lost={self.lost} unexpected={self.unexpected} "
            f"settled after {self.settle_seconds:.1f} s{f' ({self.detail})' if self.detail else ''}"
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


def skipped(run_id: str, acked: int, reason: str) -> AuditResult:
    """The result when no audit runs (``--no-audit``)."""
    return AuditResult(run_id, acked, 0, 0, 0, 0.0, "skipped", reason)


def audit_delivery(
    call: Callable[[str, bytes], bytes],
    *,
    run_id: str,
    acked: int,
    timeout: float,
    settle: float,
    sleep: Callable[[float], Any] = time.sleep,
    target: str = "",
) -> AuditResult:
    """Poll the stored count until it reaches ``acked``, stops moving for ``settle`` s, or ``timeout`` s pass."""
    started = time.monotonic()
    last_count, last_change = -1, started
    while True:
        now = time.monotonic()
        try:
            count = count_stored(call, run_id)
        except grpc.RpcError as error:
            # A busy or flaky service (the very thing under test) gets retried until the timeout.
            if status_name(error) not in RETRYABLE or now - started >= timeout:
                return AuditResult(run_id, acked, 0, 0, 0, now - started, "error", error_message(error, target))
            sleep(POLL_SECONDS)
            continue
        except RuntimeError as error:
            return AuditResult(run_id, acked, 0, 0, 0, now - started, "error", str(error))
        if last_count < 0:
            first_count = count
        if count != last_count:
            last_count, last_change = count, now
        reached = count >= acked
        if reached or now - last_change >= settle or now - started >= timeout:
            break
        sleep(POLL_SECONDS)
    lost, unexpected = max(acked - count, 0), max(count - acked, 0)
    status, detail = "lost" if lost else "ok", ""
    if lost and now - last_change < settle:
        status, detail = "unsettled", _still_storing(count - first_count, now - started, lost, timeout)
    return AuditResult(run_id, acked, count, lost, unexpected, round(last_change - started, 3), status, detail)


def _still_storing(stored_meanwhile: int, seconds: float, missing: int, timeout: float) -> str:
    rate = stored_meanwhile / seconds if seconds > 0 else 0.0
    if rate <= 0:
        return f"--audit-timeout {timeout:g} s ran out"
    return (f"still storing {rate:,.0f} logs/s when --audit-timeout {timeout:g} s ran out; "
            f"about {missing / rate:,.0f} s more needed: raise --audit-timeout")
