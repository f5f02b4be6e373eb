"""Defaults from the environment, with the seed clients' variable names."""

from __future__ import annotations

import os

from grpc_user.target import DEFAULT_PORT

DEFAULT_TIMEOUT_SECONDS = 5.0


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
