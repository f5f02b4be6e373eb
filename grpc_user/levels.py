"""Log levels: parse what users type into the wire enum, and fail loudly on typos."""

from __future__ import annotations

from grpc_user.pb import log_service_pb2 as pb

LEVEL_NAMES: tuple[str, ...] = ("DEBUG", "INFO", "WARN", "ERROR", "FATAL")
_LEVELS: tuple[pb.LogLevel, ...] = (pb.DEBUG, pb.INFO, pb.WARN, pb.ERROR, pb.FATAL)
DEFAULT_LEVEL = pb.INFO


def parse_level(level: str | int) -> pb.LogLevel:
    """Return the LogLevel number for a name in any case, an int or an enum value.

    An unknown level raises ValueError naming the five valid ones, so a typo in a load
    test never silently becomes INFO.
    """
    if isinstance(level, str):
        name = level.strip().upper()
        if name in LEVEL_NAMES:
            return _LEVELS[LEVEL_NAMES.index(name)]
    elif isinstance(level, int) and not isinstance(level, bool) and 0 <= level < len(LEVEL_NAMES):
        return _LEVELS[level]
    raise ValueError(f"unknown log level {level!r}; accepted: {', '.join(LEVEL_NAMES)} (any case) or 0-4")


def level_name(level: int) -> str:
    """The name of a LogLevel number, e.g. 2 -> 'WARN'."""
    return LEVEL_NAMES[level] if 0 <= level < len(LEVEL_NAMES) else str(level)
