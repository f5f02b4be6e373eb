"""The LogService itself, on grpc.aio, with the real service's statuses and answers."""

from __future__ import annotations

import asyncio
import time

import grpc

from grpc_user.pb import log_service_pb2 as pb
from grpc_user.pb import log_service_pb2_grpc as pb_grpc
from reference_server.faults import Faults
from reference_server.ingest import Flusher, LogQueue
from reference_server.settings import ServerSettings
from reference_server.stats import ServerStats

# Keys gRPC itself adds to every call; the rest is what the client chose to send.
TRANSPORT_KEYS = frozenset({"user-agent", ":authority", "content-type", "te", "grpc-accept-encoding",
                            "grpc-encoding", "grpc-timeout", "accept-encoding"})  # fmt: skip


class LogService(pb_grpc.LogServiceServicer):
    """WriteLog / BatchWriteLog acknowledge on enqueue; QueryLog reads the store."""

    def __init__(self, settings: ServerSettings, queue: LogQueue, flusher: Flusher, faults: Faults,
                 stats: ServerStats) -> None:  # fmt: skip
        self._settings, self._queue, self._flusher, self._faults, self._stats = settings, queue, flusher, faults, stats
        self._expected_authorization = f"Bearer {settings.auth_token}" if settings.auth_token else ""

    async def _admit(self, method: str, context: grpc.aio.ServicerContext) -> None:
        """Count the call and its metadata keys, check the token, inject configured faults."""
        calls, seen = self._stats.calls, self._stats.metadata_keys_seen
        calls[method] = calls.get(method, 0) + 1
        authorization: str | bytes = ""
        for key, value in context.invocation_metadata() or ():
            if key not in TRANSPORT_KEYS and not key.startswith("grpc-"):
                seen[key] = seen.get(key, 0) + 1
            if key == "authorization":
                authorization = value
        if self._expected_authorization and authorization != self._expected_authorization:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        if self._faults.latency_seconds:
            self._stats.injected_latency_calls += 1
            await asyncio.sleep(self._faults.latency_seconds)
        stall = self._faults.stall_seconds()
        if stall:
            await asyncio.sleep(stall)
        if self._faults.call_fails():
            self._stats.injected_errors += 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "injected fault: service unavailable")

    async def WriteLog(self, request: pb.WriteLogRequest, context: grpc.aio.ServicerContext) -> pb.WriteLogResponse:
        await self._admit("WriteLog", context)
        if not request.HasField("log_entry"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "log_entry is required")
        if not self._queue.offer((request.log_entry,), self._settings.flush_batch):
            self._stats.rejected_queue_full += 1
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "log queue is full")
        self._stats.acked += 1
        if self._settings.count_by:
            self._stats.count_values("acked", (request.log_entry,), self._settings.count_by)
        return pb.WriteLogResponse(success=True, log_id=f"queued-{time.time_ns()}")

    async def BatchWriteLog(
        self, request: pb.BatchWriteLogRequest, context: grpc.aio.ServicerContext
    ) -> pb.BatchWriteLogResponse:
        await self._admit("BatchWriteLog", context)
        entries = request.log_entries
        if not entries:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "log_entries is empty")
        if len(entries) > self._settings.max_batch:
            refusal = f"batch of {len(entries)} entries exceeds the maximum of {self._settings.max_batch}"
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, refusal)
        accepted = self._queue.offer(entries, self._settings.flush_batch)
        self._stats.acked += accepted
        if self._settings.count_by:
            self._stats.count_values("acked", entries[:accepted], self._settings.count_by)
        self._stats.rejected_queue_full += len(entries) - accepted
        stamp = time.time_ns()
        log_ids = [f"queued-{stamp}-{index}" for index in range(accepted)]
        if accepted < len(entries):
            failed = len(entries) - accepted
            return pb.BatchWriteLogResponse(success=False, error_message=f"{failed} logs failed to enqueue",
                                            log_ids=log_ids)  # fmt: skip
        return pb.BatchWriteLogResponse(success=True, log_ids=log_ids)

    async def QueryLog(self, request: pb.QueryLogRequest, context: grpc.aio.ServicerContext) -> pb.QueryLogResponse:
        await self._admit("QueryLog", context)
        logs, total = await self._flusher.query(request)
        return pb.QueryLogResponse(logs=logs, total_count=total, success=True)
