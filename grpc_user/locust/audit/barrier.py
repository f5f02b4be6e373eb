"""The audit's barriers: one log written after this run's count stood still, on each server the run reached,
queued behind every log that server acknowledged before.

Each server queues what it acknowledges in one FIFO queue that one flusher stores batch by batch, in order
(docs/contract.md; the real service's ``LogQueue`` is a Go channel read by one goroutine). So once a log written to a
server after the stop is visible to QueryLog, every log that server acknowledged before it has been stored, or dropped
by a failed flush. Replicas each have a queue of their own (and their own flush period), so the proof holds for a
run only once every server its calls reached (``counts/peers.py``'s peers, and the servers the target lists) has
stored the barrier written to it on a channel to its address alone: what is still missing then is lost, however long
the flush periods and whatever else the servers store. Without that a shortfall is only a count that has not moved
for a while, which a flush period longer than ``--audit-settle``, or another run's backlog stored first, also gives.

A barrier carries metadata ``audit_barrier=<run id>`` and ``audit_peer=<the server it was written to>`` and no run id,
so the run's own count never includes it; it is one more log in the service's store (service_name
``grpc-locust-audit``), written only when an audit finds logs missing and the run's stored count standing still.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from grpc_user.calls import METHOD_PATHS, WRITE_LOG, status_name
from grpc_user.entries import utc_now_rfc3339
from grpc_user.levels import DEFAULT_LEVEL
from grpc_user.locust.audit.stored_count import RETRYABLE, count_matching
from grpc_user.pb import log_service_pb2 as pb

BARRIER_KEY = "audit_barrier"
PEER_KEY = "audit_peer"
# While no barrier is stored, another is written this often (s): at a 20% drop rate, 5 in a 15 s audit all dropped
# is 1 in 3,000.
RESEND_SECONDS = 2.0
SERVICE_NAME = "grpc-locust-audit"
WRITE_PATH = METHOD_PATHS[WRITE_LOG]
# A barrier write that fails with one of these may succeed later (a full queue, a restart): the audit tries again.
WRITE_RETRYABLE = RETRYABLE | {"ABORTED", "CANCELLED"}

Call = Callable[[str, bytes], bytes]


def barrier_request(run_id: str, number: int, peer: str) -> bytes:
    """The WriteLog of barrier ``number`` (1, 2, ...) to server ``peer`` of the audit of ``run_id``."""
    entry = pb.LogEntry(service_name=SERVICE_NAME, level=DEFAULT_LEVEL, timestamp=utc_now_rfc3339(),
                        message=f"delivery audit barrier {number} of run {run_id} to {peer}",
                        metadata={BARRIER_KEY: run_id, PEER_KEY: peer, "barrier": str(number)})  # fmt: skip
    return pb.WriteLogRequest(log_entry=entry).SerializeToString()


@dataclass
class Barrier:
    """The barriers of one audit to one server ``peer`` (written with ``write``, a call to that server alone):
    ``sent`` acknowledged so far, the last one at ``sent_at`` (monotonic s), ``visible`` found by the last count,
    ``refused``: why the server will not take one ('' while it may)."""

    run_id: str
    peer: str
    write: Call
    sent: int = 0
    sent_at: float = 0.0
    visible: int = 0
    refused: str = ""

    def due(self, now: float) -> bool:
        """Is a barrier due at ``now``: none stored yet and none refused, and none written yet or the last one
        ``RESEND_SECONDS`` ago (a failed flush may have dropped it: a long flush period gets a few more)?"""
        return not self.visible and not self.refused and (not self.sent or now - self.sent_at >= RESEND_SECONDS)

    def send(self, now: float) -> None:
        """Write one more barrier; a write that fails for good sets ``refused`` (the audit then proves no loss)."""
        try:
            answer = pb.WriteLogResponse.FromString(self.write(WRITE_PATH, barrier_request(self.run_id, self.sent + 1,
                                                                                           self.peer)))  # fmt: skip
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

    def figures(self) -> dict[str, Any]:
        """This server's barriers for ``_audit.json``: the server, written, stored, refused ('' unless), reached."""
        return {"peer": self.peer, "written": self.sent, "stored": self.visible, "refused": self.refused,
                "reached": True}  # fmt: skip


class Barriers:
    """The barriers of one audit, one ``Barrier`` per server the run reached (``writes``: server -> a call to that
    server alone); ``unreached``: the servers the target lists that no call of the run reached, which hold none of
    its logs: no barrier is written there."""

    def __init__(self, run_id: str, writes: Mapping[str, Call], unreached: Sequence[str] = ()) -> None:
        self.by_peer = [Barrier(run_id, peer, write) for peer, write in sorted(writes.items())]
        self.unreached = sorted(unreached)

    @property
    def sent(self) -> int:
        """Barriers acknowledged, over every server."""
        return sum(barrier.sent for barrier in self.by_peer)

    @property
    def refused(self) -> str:
        """Why servers refused theirs ('' while none did; with several, each named)."""
        if len(self.by_peer) == 1:
            return self.by_peer[0].refused
        return "; ".join(f"{barrier.peer}: {barrier.refused}" for barrier in self.by_peer if barrier.refused)

    @property
    def stored_everywhere(self) -> bool:
        """Has every server stored a barrier written to it (the proof that what is missing will not come)?"""
        return all(barrier.visible for barrier in self.by_peer)

    def not_stored(self) -> list[str]:
        """The servers that have not stored a barrier written to them."""
        return [barrier.peer for barrier in self.by_peer if not barrier.visible]

    def send_due(self, now: float) -> None:
        """Write a barrier to each server that has one due."""
        for barrier in self.by_peer:
            if barrier.due(now):
                barrier.send(now)

    def count(self, call: Call) -> None:
        """Count the barriers each server stores now, over ``call`` (before this run's count: a barrier visible
        everywhere makes that final)."""
        for barrier in self.by_peer:
            if barrier.sent and not barrier.visible:
                barrier.visible = count_matching(call, {BARRIER_KEY: barrier.run_id, PEER_KEY: barrier.peer})

    def figures(self) -> list[dict[str, Any]]:
        """Each server's barriers, for ``_audit.json``'s ``barriers_by_peer``; a server no call of the run reached
        (grpc started none there): ``reached`` false, none written, none needed."""
        unreached = [{"peer": peer, "written": 0, "stored": 0, "refused": "", "reached": False}
                     for peer in self.unreached]  # fmt: skip
        return sorted([barrier.figures() for barrier in self.by_peer] + unreached, key=lambda figures: figures["peer"])
