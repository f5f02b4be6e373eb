"""``GrpcUser.client``: the LogClient API where every RPC fires exactly one Locust request event."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import grpc
from locust.exception import StopUser

from grpc_user import calls
from grpc_user.failures import GrpcCallFailure, failure_from_message
from grpc_user.latency_split import OK, LatencySplit
from grpc_user.log_counts import LogCounter
from grpc_user.pb import log_service_pb2 as pb
from grpc_user.request_budget import RequestBudget
from grpc_user.results import BatchResult, ChunkResult, QueryResult, WriteResult

REQUEST_TYPE = "grpc"
PATHS = {rpc: f"/{calls.SERVICE}/{rpc}" for rpc in (calls.WRITE_LOG, calls.BATCH_WRITE_LOG, calls.QUERY_LOG)}


class UnaryTransport(Protocol):
    """Sends serialized requests; blocks only the calling greenlet; raises grpc.RpcError."""

    def unary(self, path: str, payload: bytes, timeout: float) -> bytes: ...


class GrpcLogClient:
    """Kwargs-splitting client bound to one Locust user; results are returned, failures recorded."""

    def __init__(
        self,
        *,
        transport: UnaryTransport,
        target: str,
        timeout: float,
        max_batch_size: int,
        request_event: Any,
        counter: LogCounter,
        latency: LatencySplit,
        budget: RequestBudget,
        context: Callable[[], dict],
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.max_batch_size = max_batch_size
        self._transport = transport
        self._fire = request_event.fire
        self._counter = counter
        self._latency = latency
        self._budget = budget
        self._context = context
        self._urls = {rpc: f"{target}{path}" for rpc, path in PATHS.items()}

    def write_log(self, message: str, *, name: str | None = None, **kwargs: Any) -> WriteResult:
        """One WriteLog of ``message``; keywords split as in ``LogClient.write_log``."""
        return self.send_write(calls.write_request(message, **kwargs), name=name)

    def send_write(self, request: pb.WriteLogRequest, *, name: str | None = None) -> WriteResult:
        """One WriteLog of a ready request (the workloads' fast path)."""
        return self._call(calls.WRITE_LOG, name, request, 1, _write_outcome)

    def batch_write_logs(
        self, entries: Iterable[pb.LogEntry | Mapping[str, Any]], *, name: str | None = None
    ) -> BatchResult:
        """BatchWriteLog RPCs of at most ``max_batch_size`` entries; one request event per RPC."""
        chunks = [self.send_batch(request, name=name) for request in calls.batch_requests(entries, self.max_batch_size)]
        return calls.batch_result(chunks)

    def send_batch(self, request: pb.BatchWriteLogRequest, *, name: str | None = None) -> ChunkResult:
        """One BatchWriteLog of a ready request."""
        sent = len(request.log_entries)
        return self._call(calls.BATCH_WRITE_LOG, name, request, sent, lambda raw: _batch_outcome(raw, sent))

    def query_logs(self, *, name: str | None = None, **filters: Any) -> QueryResult:
        """One QueryLog; unknown keywords become metadata filters."""
        return self._call(calls.QUERY_LOG, name, calls.query_request(**filters), 0, _query_outcome)

    def _call(
        self,
        rpc: str,
        name: str | None,
        request: Any,
        sent: int,
        outcome: Callable[[bytes], tuple[Any, int, GrpcCallFailure | None]],
    ) -> Any:
        if not self._budget.take():
            raise StopUser()
        name = name or rpc
        payload = request.SerializeToString()
        start_time = time.time()
        started = time.perf_counter()
        try:
            raw = self._transport.unary(PATHS[rpc], payload, self.timeout)
        except grpc.RpcError as error:
            elapsed_ms = (time.perf_counter() - started) * 1000
            result = _error_result(rpc, error, self.target, sent)
            acked, length, exception = 0, 0, GrpcCallFailure(calls.status_name(error), error.details() or "")
        except BaseException:  # the user was stopped mid-call: nothing to record, the permit goes back
            self._budget.refund()
            raise
        else:
            elapsed_ms = (time.perf_counter() - started) * 1000
            result, acked, exception = outcome(raw)
            length = len(raw)
        self._counter.add(name, sent, acked)
        self._latency.record(name, exception.cause if exception else OK, elapsed_ms)
        self._fire(
            request_type=REQUEST_TYPE,
            name=name,
            response_time=elapsed_ms,
            response_length=length,
            response=result,
            context=self._context(),
            exception=exception,
            start_time=start_time,
            url=self._urls[rpc],
        )
        self._budget.release()
        return result


def _write_outcome(raw: bytes) -> tuple[WriteResult, int, GrpcCallFailure | None]:
    result = calls.write_result(pb.WriteLogResponse.FromString(raw))
    if result.success:
        return result, 1, None
    return result, 0, failure_from_message(result.error_message)


def _batch_outcome(raw: bytes, sent: int) -> tuple[ChunkResult, int, GrpcCallFailure | None]:
    result = calls.chunk_result(pb.BatchWriteLogResponse.FromString(raw), sent)
    return result, result.accepted, None if result.success else failure_from_message(result.error_message)


def _query_outcome(raw: bytes) -> tuple[QueryResult, int, GrpcCallFailure | None]:
    result = calls.query_result(pb.QueryLogResponse.FromString(raw))
    return result, 0, None if result.success else failure_from_message(result.error_message)


def _error_result(rpc: str, error: grpc.RpcError, target: str, sent: int) -> Any:
    if rpc == calls.WRITE_LOG:
        return calls.write_failure(error, target)
    if rpc == calls.BATCH_WRITE_LOG:
        return calls.chunk_failure(error, target, sent)
    return calls.query_failure(error, target)
