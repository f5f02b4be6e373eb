"""The asyncio client: ``await AsyncLogClient(target).write_log(message, **kwargs)``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import grpc

from grpc_user import calls, health
from grpc_user.channels import aio_channel
from grpc_user.client import client_settings
from grpc_user.connection_watch import aio_watch, watch_aio_channel
from grpc_user.pb import log_service_pb2 as pb
from grpc_user.pb import log_service_pb2_grpc as pb_grpc
from grpc_user.results import BatchResult, HealthResult, QueryResult, WriteResult
from grpc_user.settings import DEFAULT_TIMEOUT_SECONDS


class AsyncLogClient:
    """grpc.aio LogService client with the same API and results as ``LogClient`` (rejected or in doubt alike)."""

    def __init__(
        self,
        target: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_batch_size: int | None = None,
        lb_policy: str = "",
    ) -> None:
        self.target, self.timeout, self.max_batch_size = client_settings(target, timeout, max_batch_size)
        self._channel = aio_channel(self.target, lb_policy=lb_policy)
        self._stub = pb_grpc.LogServiceStub(self._channel)
        self._watch = aio_watch(self._channel, self.target.address)
        self._watching: asyncio.Task[None] | None = None

    async def write_log(self, message: str, **kwargs: Any) -> WriteResult:
        """Send one WriteLog; see ``grpc_user.entries`` for how keywords are split."""
        response, error, unknown = await self._unary(self._stub.WriteLog, calls.write_request(message, **kwargs))
        if error is None:
            return calls.write_result(response)
        return calls.write_failure(error, self.target.address, unknown)

    async def batch_write_logs(self, entries: Iterable[pb.LogEntry | Mapping[str, Any]]) -> BatchResult:
        """Send the entries as BatchWriteLog RPCs of at most ``max_batch_size`` entries each."""
        chunks = []
        for request in calls.batch_requests(entries, self.max_batch_size):
            sent = len(request.log_entries)
            response, error, unknown = await self._unary(self._stub.BatchWriteLog, request)
            if error is None:
                chunks.append(calls.chunk_result(response, sent))
            else:
                chunks.append(calls.chunk_failure(error, self.target.address, sent, unknown))
        return calls.batch_result(chunks)

    async def _unary(self, method: Callable[..., Any], request: Any) -> tuple[Any, grpc.RpcError | None, bool]:
        """One call, counted by the watch as in flight: (its answer, None, False), or (None, its error, whether its
        outcome is unknown)."""
        if self._watching is None:  # the first call: now there is a running loop to watch the channel on
            self._watching = asyncio.ensure_future(watch_aio_channel(self._channel, self._watch))
        call = self._watch.begin()
        try:
            return await method(request, timeout=self.timeout), None, False
        except grpc.RpcError as error:
            return None, error, calls.outcome_unknown(error, self._watch.never_sent(call))
        finally:
            self._watch.end()

    async def query_logs(self, **filters: Any) -> QueryResult:
        """Send one QueryLog; unknown keywords become metadata filters."""
        response, error, _ = await self._unary(self._stub.QueryLog, calls.query_request(**filters))
        if error is None:
            return calls.query_result(response)
        return calls.query_failure(error, self.target.address)

    async def health(self) -> HealthResult:
        """Ask the standard health service; without one, probe WriteLog with an empty request."""
        return await health.check_async(self._bytes_call, str(self.target))

    async def _bytes_call(self, path: str, payload: bytes) -> bytes:
        answer, error, _ = await self._unary(self._channel.unary_unary(path), payload)
        if error is not None:
            raise error
        return bytes(answer)

    async def close(self) -> None:
        """Close the channel (and stop watching it)."""
        if self._watching is not None:
            self._watching.cancel()
        await self._channel.close()

    async def __aenter__(self) -> AsyncLogClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
