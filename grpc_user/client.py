"""The blocking client: ``LogClient(target).write_log(message, **kwargs)``."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import grpc

from grpc_user import calls, health
from grpc_user.channels import sync_channel
from grpc_user.connection_watch import ConnectionWatch, watch_sync_channel
from grpc_user.pb import log_service_pb2 as pb
from grpc_user.pb import log_service_pb2_grpc as pb_grpc
from grpc_user.results import BatchResult, HealthResult, QueryResult, WriteResult
from grpc_user.settings import (
    DEFAULT_TIMEOUT_SECONDS,
    MAX_TIMEOUT_SECONDS,
    MIN_TIMEOUT_SECONDS,
    TIMEOUT_ACCEPTED,
    default_max_batch_size,
    default_target,
)
from grpc_user.target import Target, parse_target


def _close_channel(channel: grpc.Channel, watch: ConnectionWatch) -> None:
    """Unsubscribe, let grpc's polling thread see it (its watch wakes every 0.2 s), then close: a channel closed under
    that thread makes it print "Cannot monitor channel state: Channel closed!" with a traceback."""
    channel.unsubscribe(watch.observe)
    polling = getattr(channel, "_connectivity_state", None)  # grpc._channel's private state: listed in architecture.md
    deadline = time.monotonic() + POLL_STOP_SECONDS
    while polling is not None and polling.polling and time.monotonic() < deadline:
        time.sleep(0.01)
    channel.close()


# How long closing waits for grpc's connectivity polling thread to stop (it looks every 0.2 s).
POLL_STOP_SECONDS = 0.5


def check_timeout(timeout: float) -> float:
    """A per-call deadline: seconds from MIN_TIMEOUT_SECONDS to MAX_TIMEOUT_SECONDS (what gRPC can keep)."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
            or not MIN_TIMEOUT_SECONDS <= timeout <= MAX_TIMEOUT_SECONDS:  # fmt: skip
        raise ValueError(f"timeout={timeout!r}; accepted: {TIMEOUT_ACCEPTED}")
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
        lb_policy: str = "",
    ) -> None:
        self.target, self.timeout, self.max_batch_size = client_settings(target, timeout, max_batch_size)
        self._channel = sync_channel(self.target, lb_policy=lb_policy)
        self._watch = watch_sync_channel(self._channel, self.target.address)
        self._calls = threading.Lock()  # the watch's count of calls in flight: the client's threads share it
        self._stub = pb_grpc.LogServiceStub(self._channel)
        # Closed when the client is collected or, at the latest, at interpreter exit while grpc's polling thread
        # still runs: a channel with a subscriber left to ``Channel.__del__`` at shutdown waits forever for that
        # thread's lock.
        self._close = weakref.finalize(self, _close_channel, self._channel, self._watch)

    def write_log(self, message: str, **kwargs: Any) -> WriteResult:
        """Send one WriteLog; see ``grpc_user.entries`` for how keywords are split."""
        response, error, unknown = self._unary(self._stub.WriteLog, calls.write_request(message, **kwargs))
        if error is None:
            return calls.write_result(response)
        return calls.write_failure(error, self.target.address, unknown)

    def batch_write_logs(self, entries: Iterable[pb.LogEntry | Mapping[str, Any]]) -> BatchResult:
        """Send the entries as BatchWriteLog RPCs of at most ``max_batch_size`` entries each."""
        chunks = []
        for request in calls.batch_requests(entries, self.max_batch_size):
            sent = len(request.log_entries)
            response, error, unknown = self._unary(self._stub.BatchWriteLog, request)
            if error is None:
                chunks.append(calls.chunk_result(response, sent))
            else:
                chunks.append(calls.chunk_failure(error, self.target.address, sent, unknown))
        return calls.batch_result(chunks)

    def _unary(self, method: Callable[..., Any], request: Any) -> tuple[Any, grpc.RpcError | None, bool]:
        """One call, counted by the watch as in flight: (its answer, None, False), or (None, its error, whether its
        outcome is unknown)."""
        with self._calls:
            call = self._watch.begin()
        try:
            return method(request, timeout=self.timeout), None, False
        except grpc.RpcError as error:
            return None, error, calls.outcome_unknown(error, self._watch.never_sent(call))
        finally:
            with self._calls:
                self._watch.end()

    def query_logs(self, **filters: Any) -> QueryResult:
        """Send one QueryLog; unknown keywords become metadata filters."""
        response, error, _ = self._unary(self._stub.QueryLog, calls.query_request(**filters))
        if error is None:
            return calls.query_result(response)
        return calls.query_failure(error, self.target.address)

    def health(self) -> HealthResult:
        """Ask the standard health service; without one, probe WriteLog with an empty request."""
        return health.check(self._bytes_call, str(self.target))

    def _bytes_call(self, path: str, payload: bytes) -> bytes:
        answer, error, _ = self._unary(self._channel.unary_unary(path), payload)
        if error is not None:
            raise error
        return bytes(answer)

    def close(self) -> None:
        """Close the channel (once; later calls do nothing)."""
        self._close()

    def __enter__(self) -> LogClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
