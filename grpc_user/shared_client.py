"""Module-level ``write_log`` / ``batch_write_logs`` / ``query_logs`` over one shared client.

The shared client is built on first use from ``GRPC_SERVER_HOST`` / ``GRPC_SERVER_PORT``, as the
seed clients' singletons were.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from grpc_user.client import LogClient
from grpc_user.pb import log_service_pb2 as pb
from grpc_user.results import BatchResult, QueryResult, WriteResult

_lock = threading.Lock()
_client: LogClient | None = None


def default_client() -> LogClient:
    """The process-wide client, created on first use."""
    global _client
    with _lock:
        if _client is None:
            _client = LogClient()
        return _client


def write_log(message: str, **kwargs: Any) -> WriteResult:
    """``LogClient.write_log`` on the shared client."""
    return default_client().write_log(message, **kwargs)


def batch_write_logs(entries: Iterable[pb.LogEntry | Mapping[str, Any]]) -> BatchResult:
    """``LogClient.batch_write_logs`` on the shared client."""
    return default_client().batch_write_logs(entries)


def query_logs(**filters: Any) -> QueryResult:
    """``LogClient.query_logs`` on the shared client."""
    return default_client().query_logs(**filters)
