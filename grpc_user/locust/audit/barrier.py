"""The audit's barrier: one log written after the stop, queued behind every log the service acknowledged before.

The service queues what it acknowledges in one FIFO queue that one flusher stores batch by batch, in order
(docs/contract.md; the real service's ``LogQueue`` is a Go channel read by one goroutine). So once a log written
after the stop is visible to QueryLog, every log acknowledged before it has been stored, or dropped by a failed
flush: what is still missing then is lost, however long the service's flush period and whatever else it stores.
Without a visible barrier a shortfall is only a count that has not moved for a while, which a flush period longer
than ``--audit-settle``, or another run's backlog stored first, also gives.

A barrier carries metadata ``audit_barrier=<run id>`` and no run id, so the run's own count never includes it; it is
one more log in the service's store (service_name ``grpc-locust-audit``), written only when an audit finds logs
missing and the run's stored count standing still.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import grpc
from google.protobuf.message import DecodeError

from grpc_user.calls import METHOD_PATHS, WRITE_LOG, status_name
from grpc_user.entries import utc_now_rfc3339
from grpc_user.levels import DEFAULT_LEVEL
from grpc_user.locust.audit.stored_count import RETRYABLE, count_stored
from grpc_user.pb import log_service_pb2 as pb

BARRIER_KEY = "audit_barrier"
# While no barrier is stored, another is written this often (s): at a 20% drop rate, 5 in a 15 s audit all dropped
# is 1 in 3,000.
RESEND_SECONDS = 2.0
SERVICE_NAME = "grpc-locust-audit"
WRITE_PATH = METHOD_PATHS[WRITE_LOG]
# A barrier write that fails with one of these may succeed later (a full queue, a restart): the audit tries again.
WRITE_RETRYABLE = RETRYABLE | {"ABORTED", "CANCELLED"}


def barrier_request(run_id: str, number: int) -> bytes:
    """The WriteLog of barrier ``number`` (1, 2, ...) of the audit of ``run_id``."""
    entry = pb.LogEntry(service_name=SERVICE_NAME, level=DEFAULT_LEVEL, timestamp=utc_now_rfc3339(),
                        message=f"delivery audit barrier {number} of run {run_id}",
                        metadata={BARRIER_KEY: run_id, "barrier": str(number)})  # fmt: skip
    return pb.WriteLogRequest(log_entry=entry).SerializeToString()


@dataclass
class Barrier:
    """The barriers of one audit: ``sent`` acknowledged so far, the last one at ``sent_at`` (monotonic s),
    ``visible`` found by the last count, ``refused``: why the service will not take one ('' while it may)."""

    run_id: str
    sent: int = 0
    sent_at: float = 0.0
    visible: int = 0
    refused: str = ""

    def due(self, now: float) -> bool:
        """Is a barrier due at ``now``: the first, or another ``RESEND_SECONDS`` after the last, which a failed flush
        may have dropped (a barrier is one log: a long flush period gets a few more)?"""
        return not self.sent or now - self.sent_at >= RESEND_SECONDS

    def send(self, call: Callable[[str, bytes], bytes], now: float) -> None:
        """Write one more barrier; a write that fails for good sets ``refused`` (the audit then decides without)."""
        try:
            answer = pb.WriteLogResponse.FromString(call(WRITE_PATH, barrier_request(self.run_id, self.sent + 1)))
        except grpc.RpcError as error:
            if status_name(error) not in WRITE_RETRYABLE:
                self.refused = f"WriteLog answered {status_name(error)}"
            return
        except DecodeError:
            self.refused = "WriteLog's answer was unreadable"
            return
        if answer.success:
            self.sent, self.sent_at = self.sent + 1, now
        else:  # a full queue answers RESOURCE_EXHAUSTED (tried again): this is a refusal
            self.refused = f"WriteLog answered success=false: {answer.error_message or 'no message'}"

    def count(self, call: Callable[[str, bytes], bytes]) -> None:
        """Count the barriers the service stores now (before this run's count: a visible one makes that final)."""
        if self.sent:
            self.visible = count_stored(call, self.run_id, BARRIER_KEY)
