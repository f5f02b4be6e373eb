"""Build LogEntry messages from ``write_log(message, **kwargs)`` the way the seed clients did.

``service_name``, ``level``, ``trace_id``, ``span_id`` and ``timestamp`` go into the entry's own
fields; every other keyword goes into ``metadata`` as a string (dicts and lists as JSON).
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import time
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from grpc_user.levels import DEFAULT_LEVEL, parse_level
from grpc_user.pb import log_service_pb2 as pb

# The metadata key under which every log of a test carries its run id: the delivery audit counts by it.
RUN_ID_KEY = "run_id"
_TEXT_FIELDS = ("service_name", "trace_id", "span_id")
_ACCEPTED_VALUES = "str, int, float, bool, None, datetime, date, UUID, Decimal, Enum, dict, list, tuple"


_second_text: list[int | str] = [0, ""]


def utc_now_rfc3339() -> str:
    """The current UTC time in RFC 3339 with microseconds, e.g. 2024-08-30T10:30:45.123456+00:00.

    Formats the date part once per second: a load generator stamps every log it sends.
    """
    now = time.time()
    second = int(now)
    if second != _second_text[0]:
        _second_text[:] = [second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))]
    return f"{_second_text[1]}.{int((now - second) * 1_000_000):06d}+00:00"


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, Decimal)):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    raise TypeError(f"cannot encode a value of type {type(value).__name__}; accepted: {_ACCEPTED_VALUES}")


def metadata_value(key: str, value: Any) -> str:
    """Turn one metadata value into the string the wire carries; raise TypeError for unknown types."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float, Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, enum.Enum):
        return metadata_value(key, value.value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        try:
            return json.dumps(value, ensure_ascii=False, default=_json_default, separators=(",", ":"))
        except (TypeError, ValueError) as error:
            raise TypeError(f"metadata {key!r}: {error}") from None
    raise TypeError(
        f"metadata {key!r}: cannot encode a value of type {type(value).__name__}; accepted: {_ACCEPTED_VALUES}"
    )


def timestamp_value(value: str | dt.datetime) -> str:
    """An RFC 3339 string for a ``timestamp`` keyword (naive datetimes are taken as UTC)."""
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
    if isinstance(value, str):
        return value
    raise TypeError(f"timestamp: expected an RFC 3339 str or a datetime, got {type(value).__name__}")


def build_log_entry(message: str, **kwargs: Any) -> pb.LogEntry:
    """Split keywords into LogEntry fields and string metadata; the timestamp defaults to now (UTC)."""
    if not isinstance(message, str):
        raise TypeError(f"message: expected str, got {type(message).__name__}")
    entry = pb.LogEntry(message=message)
    level = kwargs.pop("level", None)
    entry.level = DEFAULT_LEVEL if level is None else parse_level(level)
    timestamp = kwargs.pop("timestamp", None)
    entry.timestamp = utc_now_rfc3339() if timestamp is None else timestamp_value(timestamp)
    for field in _TEXT_FIELDS:
        value = kwargs.pop(field, None)
        if value is None:
            continue
        if not isinstance(value, str):
            raise TypeError(f"{field}: expected str, got {type(value).__name__}")
        setattr(entry, field, value)
    if kwargs:
        entry.metadata.update({key: metadata_value(key, value) for key, value in kwargs.items()})
    return entry


def entry_from_item(item: pb.LogEntry | Mapping[str, Any]) -> pb.LogEntry:
    """A batch item: a ready LogEntry, or a mapping with ``message`` plus write_log keywords."""
    if isinstance(item, pb.LogEntry):
        return item
    if isinstance(item, Mapping):
        fields = dict(item)
        if "message" not in fields:
            raise ValueError(f"batch entry without 'message': {sorted(fields)}")
        return build_log_entry(fields.pop("message"), **fields)
    raise TypeError(f"batch entry: expected a dict with 'message' or a LogEntry, got {type(item).__name__}")
