"""Transport-free halves of every call: build the request, classify the answer.

The sync, asyncio and Locust clients share these, so a call means the same thing whichever
client makes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import grpc

from grpc_user.entries import build_log_entry, entry_from_item, metadata_value, timestamp_value
from grpc_user.levels import level_name, parse_level
from grpc_user.pb import log_service_pb2 as pb
from grpc_user.results import APP_FAILURE, PARTIAL_BATCH, BatchResult, ChunkResult, QueryResult, WriteResult

SERVICE = "logservice.LogService"
WRITE_LOG = "WriteLog"
BATCH_WRITE_LOG = "BatchWriteLog"
QUERY_LOG = "QueryLog"
# The method path of each RPC, as the wire and untyped (bytes-in, bytes-out) callers name it.
METHOD_PATHS = {rpc: f"/{SERVICE}/{rpc}" for rpc in (WRITE_LOG, BATCH_WRITE_LOG, QUERY_LOG)}
# The answer's message type of each RPC, as an unreadable answer's failure names it.
RESPONSE_NAMES = {rpc: f"{rpc}Response" for rpc in METHOD_PATHS}
_QUERY_FIELDS = frozenset({"service_name", "level", "start_time", "end_time", "trace_id", "limit", "offset"})
# Statuses by which the service (or a proxy in front of it) refuses a request: nothing was queued. Every other
# status (UNAVAILABLE, CANCELLED, DEADLINE_EXCEEDED, INTERNAL, UNKNOWN, …) can come from a transport that broke or
# gave up after the request was sent.
REFUSALS = frozenset({"INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
                      "FAILED_PRECONDITION", "OUT_OF_RANGE", "UNIMPLEMENTED", "UNAUTHENTICATED"})  # fmt: skip
# A call whose HTTP/2 stream the server refused (RST_STREAM REFUSED_STREAM, error code 7): gRPC's status is UNAVAILABLE
# and its details are grpc core's own words for the frame (``refused_stream``); the failure is named apart.
REFUSED_STREAM = "REFUSED_STREAM"
REFUSED_STREAM_DETAILS = "Received RST_STREAM with error code 7"
REFUSED_STREAM_TEXT = (
    "UNAVAILABLE, the server refused the call's stream before processing any of it (RST_STREAM REFUSED_STREAM)"
)

REQUEST_TYPE = "grpc"  # Locust's request_type of every call the suite makes (the Type column of its stats)


def write_request(message: str, **kwargs: Any) -> pb.WriteLogRequest:
    """A WriteLogRequest for ``write_log(message, **kwargs)``."""
    return pb.WriteLogRequest(log_entry=build_log_entry(message, **kwargs))


def batch_requests(
    entries: Iterable[pb.LogEntry | Mapping[str, Any]], max_batch_size: int
) -> Iterator[pb.BatchWriteLogRequest]:
    """One BatchWriteLogRequest per ``max_batch_size`` entries (all built before the first is sent)."""
    built = [entry_from_item(item) for item in entries]
    if not built:
        raise ValueError("batch_write_logs needs at least one entry")
    for start in range(0, len(built), max_batch_size):
        yield pb.BatchWriteLogRequest(log_entries=built[start : start + max_batch_size])


def query_request(**filters: Any) -> pb.QueryLogRequest:
    """A QueryLogRequest: named filters go to their fields, every other keyword is a metadata filter."""
    request = pb.QueryLogRequest()
    metadata_filters = dict(filters.pop("metadata_filters", None) or {})
    for key in [key for key in filters if key not in _QUERY_FIELDS]:
        metadata_filters[key] = filters.pop(key)
    if filters.get("level") is not None:
        request.level = parse_level(filters["level"])
    for name in ("start_time", "end_time"):
        value = filters.get(name)
        if value is not None:
            setattr(request, name, timestamp_value(value))
    for name in ("service_name", "trace_id"):
        if filters.get(name):
            setattr(request, name, str(filters[name]))
    for name in ("limit", "offset"):
        value = filters.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}={value!r}; accepted: a whole number >= 0")
            setattr(request, name, value)
    request.metadata_filters.update({key: metadata_value(key, value) for key, value in metadata_filters.items()})
    return request


def status_name(error: grpc.RpcError) -> str:
    """The status code name of a gRPC error, e.g. ``UNAVAILABLE``."""
    code = error.code() if hasattr(error, "code") else None
    return code.name if code is not None else "UNKNOWN"


def refused_stream(error: grpc.RpcError) -> bool:
    """True when the server reset the call's HTTP/2 stream with REFUSED_STREAM: it processed none of it (RFC 9113
    §8.7), so the request was never queued.

    gRPC's Python API gives no HTTP/2 error code, only the status (UNAVAILABLE) and the details its own transport
    wrote when it read the RST_STREAM frame (``REFUSED_STREAM_DETAILS``): a fact of the client's HTTP/2 layer, not
    words of the service. A grpc server refuses streams past its ``grpc.max_concurrent_streams`` (counting, by
    default, calls its application has not released yet, so a client that keeps under the limit meets refusals
    too). grpcio 1.85 does not retry such a call by itself: it fails at once (one refused stream per call).
    """
    return status_name(error) == "UNAVAILABLE" and REFUSED_STREAM_DETAILS in (error.details() or "")


def failure_cause(error: grpc.RpcError) -> str:
    """How a failed call is named and grouped: ``REFUSED_STREAM`` for a refused stream, else its status name."""
    return REFUSED_STREAM if refused_stream(error) else status_name(error)


def outcome_unknown(error: grpc.RpcError, never_sent: bool) -> bool:
    """True when a failed call's request may have been queued (in doubt), False when it was rejected.

    Rejected: the service said no (a status of ``REFUSALS``), the server refused the call's stream before
    processing any of it (``refused_stream``), or the request provably never left the client (``never_sent``,
    from the channel's connectivity: ``grpc_user.connection_watch``). Any other failure happened after the request
    may have been written, whatever its detail says.
    """
    return not never_sent and status_name(error) not in REFUSALS and not refused_stream(error)


def error_message(error: grpc.RpcError, target: str) -> str:
    """``CAUSE: details (target …)``: starts with the status (``failure_cause``) so failures group by cause."""
    details = error.details() if hasattr(error, "details") else str(error)
    if refused_stream(error):
        details = REFUSED_STREAM_TEXT
    return f"{failure_cause(error)}: {details or 'no details'} (target {target})"


def write_result(response: pb.WriteLogResponse) -> WriteResult:
    """Classify a WriteLogResponse: ``success=false`` is an application failure."""
    if response.success:
        return WriteResult(success=True, log_id=response.log_id)
    return WriteResult(
        success=False,
        log_id=response.log_id,
        error_message=f"{APP_FAILURE}: {response.error_message or 'success=false'}",
        cause=APP_FAILURE,
    )


def write_failure(error: grpc.RpcError, target: str, in_doubt: bool = False) -> WriteResult:
    """A WriteResult for a call that ended in a gRPC error (``in_doubt``: it may have been queued)."""
    return WriteResult(success=False, error_message=error_message(error, target), status=status_name(error),
                       cause=failure_cause(error), in_doubt=in_doubt)  # fmt: skip


def chunk_result(response: pb.BatchWriteLogResponse, sent: int) -> ChunkResult:
    """Classify a BatchWriteLogResponse; status OK with ``success=false`` may be a partial batch."""
    log_ids = list(response.log_ids)
    if response.success:
        return ChunkResult(sent=sent, accepted=sent, success=True, log_ids=log_ids)
    accepted = min(len(log_ids), sent)
    cause = PARTIAL_BATCH if accepted else APP_FAILURE
    detail = response.error_message or "success=false"
    return ChunkResult(
        sent=sent,
        accepted=accepted,
        success=False,
        error_message=f"{cause}: {detail} (accepted {accepted} of {sent})",
        cause=cause,
        log_ids=log_ids,
    )


def chunk_failure(error: grpc.RpcError, target: str, sent: int, in_doubt: bool = False) -> ChunkResult:
    """A ChunkResult for a BatchWriteLog that ended in a gRPC error: nothing acknowledged (``in_doubt``: its logs
    may have been queued)."""
    return ChunkResult(sent=sent, accepted=0, success=False, error_message=error_message(error, target),
                       status=status_name(error), cause=failure_cause(error), in_doubt=in_doubt)  # fmt: skip


def batch_result(chunks: list[ChunkResult]) -> BatchResult:
    """Add up the chunks of one ``batch_write_logs``."""
    total = sum(chunk.sent for chunk in chunks)
    accepted = sum(chunk.accepted for chunk in chunks)
    return BatchResult(
        total_count=total,
        success_count=accepted,
        error_count=total - accepted,
        errors=[chunk.error_message for chunk in chunks if chunk.error_message],
        results=chunks,
    )


def entry_dict(entry: pb.LogEntry) -> dict[str, Any]:
    """A stored LogEntry as a plain dict, the level by name."""
    return {
        "id": entry.id,
        "service_name": entry.service_name,
        "level": level_name(entry.level),
        "message": entry.message,
        "timestamp": entry.timestamp,
        "metadata": dict(entry.metadata),
        "trace_id": entry.trace_id,
        "span_id": entry.span_id,
    }


def query_result(response: pb.QueryLogResponse) -> QueryResult:
    """Classify a QueryLogResponse."""
    if response.success:
        return QueryResult(
            success=True, logs=[entry_dict(entry) for entry in response.logs], total_count=response.total_count
        )
    return QueryResult(
        success=False,
        total_count=response.total_count,
        error_message=f"{APP_FAILURE}: {response.error_message or 'success=false'}",
        cause=APP_FAILURE,
    )


def query_failure(error: grpc.RpcError, target: str) -> QueryResult:
    """A QueryResult for a call that ended in a gRPC error."""
    return QueryResult(success=False, error_message=error_message(error, target), status=status_name(error),
                       cause=failure_cause(error))  # fmt: skip
