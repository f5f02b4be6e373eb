"""The blocking client: ``LogClient(target).write_log(message, **kwargs)``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import grpc

from grpc_user import calls, health
from grpc_user.channels import sync_channel
from grpc_user.config import DEFAULT_TIMEOUT_SECONDS, default_max_batch_size, default_target
from grpc_user.connection_watch import Mark, watch_sync_channel
from grpc_user.pb import log_service_pb2 as pb
from grpc_user.pb import log_service_pb2_grpc as pb_grpc
from grpc_user.results import BatchResult, HealthResult, QueryResult, WriteResult
from grpc_user.target import Target, parse_target

# How long a failed call waits for the channel's connectivity changes to be delivered (grpc's polling thread).
CATCH_UP_SECONDS = 0.5


def check_timeout(timeout: float) -> float:
    """A per-call deadline must be a positive number of seconds."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout={timeout!r}; accepted: a number of seconds > 0")
    return float(timeout)


def check_batch_size(size: int) -> int:
    """A batch size must be a whole number >= 1."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"max_batch_size={size!r}; accepted: a whole number >= 1")
    return size


def client_settings(target: str | None, timeout: float, max_batch_size: int | None) -> tuple[Target, float, int]:
    """Target, deadline and batch size of a client, checked (defaults from the environment)."""
    size = check_batch_size(max_batch_size or default_max_batch_size())
    return parse_target(target or default_target()), check_timeout(timeout), size


class LogClient:
    """Blocking LogService client; server-side failures come back as results, misuse raises.

    A failed write is rejected or in doubt (``result.in_doubt``) as ``grpc_user.calls.outcome_unknown`` decides,
    from this channel's connectivity (``grpc_user.connection_watch``).
    """

    def __init__(
        self,
        target: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_batch_size: int | None = None,
    ) -> None:
        self.target, self.timeout, self.max_batch_size = client_settings(target, timeout, max_batch_size)
        self._channel = sync_channel(self.target)
        self._watch = watch_sync_channel(self._channel)
        self._stub = pb_grpc.LogServiceStub(self._channel)

    def write_log(self, message: str, **kwargs: Any) -> WriteResult:
        """Send one WriteLog; see ``grpc_user.entries`` for how keywords are split."""
        request = calls.write_request(message, **kwargs)
        mark = self._watch.current
        try:
            return calls.write_result(self._stub.WriteLog(request, timeout=self.timeout))
        except grpc.RpcError as error:
            return calls.write_failure(error, self.target.address, self._outcome_unknown(error, mark))

    def batch_write_logs(self, entries: Iterable[pb.LogEntry | Mapping[str, Any]]) -> BatchResult:
        """Send the entries as BatchWriteLog RPCs of at most ``max_batch_size`` entries each."""
        chunks = []
        for request in calls.batch_requests(entries, self.max_batch_size):
            sent, mark = len(request.log_entries), self._watch.current
            try:
                chunks.append(calls.chunk_result(self._stub.BatchWriteLog(request, timeout=self.timeout), sent))
            except grpc.RpcError as error:
                chunks.append(calls.chunk_failure(error, self.target.address, sent, self._outcome_unknown(error, mark)))
        return calls.batch_result(chunks)

    def _outcome_unknown(self, error: grpc.RpcError, mark: Mark) -> bool:
        if calls.status_name(error) not in calls.REFUSALS:
            self._watch.catch_up(CATCH_UP_SECONDS)
        return calls.outcome_unknown(error, self._watch.never_sent(mark))

    def query_logs(self, **filters: Any) -> QueryResult:
        """Send one QueryLog; unknown keywords become metadata filters."""
        request = calls.query_request(**filters)
        try:
            return calls.query_result(self._stub.QueryLog(request, timeout=self.timeout))
        except grpc.RpcError as error:
            return calls.query_failure(error, self.target.address)

    def health(self) -> HealthResult:
        """Ask the standard health service; without one, probe WriteLog with an empty request."""
        return health.check(
            lambda path, payload: self._channel.unary_unary(path)(payload, timeout=self.timeout), str(self.target)
        )

    def close(self) -> None:
        """Close the channel."""
        self._channel.unsubscribe(self._watch.observe)
        self._channel.close()

    def __enter__(self) -> LogClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
