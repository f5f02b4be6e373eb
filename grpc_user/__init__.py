"""Load-testing suite for the gRPC log service: kwargs-splitting clients and the Locust GrpcUser.

The clients work without Locust. ``GrpcUser`` is imported lazily because importing Locust
monkey-patches the process for gevent, which a plain client user must not pay for.
"""

from __future__ import annotations

from typing import Any

from grpc_user import native_locks  # noqa: F401  (first: imports grpc with native locks under gevent)
from grpc_user.aio_client import AsyncLogClient
from grpc_user.client import LogClient
from grpc_user.entries import build_log_entry
from grpc_user.levels import LEVEL_NAMES, parse_level
from grpc_user.results import BatchResult, ChunkResult, HealthResult, QueryResult, WriteResult
from grpc_user.shared_client import batch_write_logs, default_client, query_logs, write_log
from grpc_user.target import Target, parse_target

__all__ = [
    "LEVEL_NAMES",
    "AsyncLogClient",
    "BatchResult",
    "ChunkResult",
    "GrpcUser",
    "HealthResult",
    "LogClient",
    "QueryResult",
    "Target",
    "WriteResult",
    "batch_write_logs",
    "build_log_entry",
    "default_client",
    "parse_level",
    "parse_target",
    "query_logs",
    "write_log",
]


def __getattr__(name: str) -> Any:
    if name == "GrpcUser":
        from grpc_user.locust.user.users import GrpcUser

        return GrpcUser
    raise AttributeError(f"module 'grpc_user' has no attribute {name!r}")
