"""The client's settings: call deadlines, the target and the largest batch, from the seed clients' environment
variables (GRPC_SERVER_HOST, GRPC_SERVER_PORT, MAX_BATCH_SIZE)."""

from __future__ import annotations

import os

from grpc_user.target import DEFAULT_PORT

DEFAULT_TIMEOUT_SECONDS = 5.0
# gRPC deadlines are whole milliseconds, and a deadline billions of seconds away overflows into an instant
# DEADLINE_EXCEEDED (measured: 4e9 s works, 9e9 s fails every call): a deadline is taken from 1 ms to a day.
MIN_TIMEOUT_SECONDS = 0.001
MAX_TIMEOUT_SECONDS = 86400.0
TIMEOUT_ACCEPTED = f"a number of seconds from {MIN_TIMEOUT_SECONDS:g} to {MAX_TIMEOUT_SECONDS:g} (a day)"


def env_int(name: str, default: int) -> int:
    """Read a positive integer from the environment; a bad value raises ValueError naming it."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a whole number; accepted: a positive integer") from None
    if value <= 0:
        raise ValueError(f"{name}={raw!r}; accepted: a positive integer")
    return value


def default_target() -> str:
    """``GRPC_SERVER_HOST:GRPC_SERVER_PORT``, localhost:50051 when unset."""
    host = os.environ.get("GRPC_SERVER_HOST") or "localhost"
    return f"{host}:{env_int('GRPC_SERVER_PORT', DEFAULT_PORT)}"


def default_max_batch_size() -> int:
    """Largest number of entries sent in one BatchWriteLog (``MAX_BATCH_SIZE``, 1000)."""
    return env_int("MAX_BATCH_SIZE", 1000)
