"""Health probe: the standard gRPC health service, else a WriteLog that stores nothing.

Written once over a bytes-in/bytes-out call, so the sync client, the asyncio client and the
Locust side (preflight) check a target the same way.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health_pb2

from grpc_user.calls import METHOD_PATHS, SERVICE, WRITE_LOG, error_message, status_name
from grpc_user.pb import log_service_pb2 as pb
from grpc_user.results import HealthResult

HEALTH_PATH = "/grpc.health.v1.Health/Check"
PROBE_PATH = METHOD_PATHS[WRITE_LOG]
HEALTH_REQUEST = health_pb2.HealthCheckRequest(service=SERVICE).SerializeToString()
# WriteLog without an entry is answered INVALID_ARGUMENT by a LogService, UNIMPLEMENTED by anything else.
PROBE_REQUEST = pb.WriteLogRequest().SerializeToString()
LOG_SERVICE_ANSWERS = frozenset({"OK", "INVALID_ARGUMENT"})

BytesCall = Callable[[str, bytes], bytes]
AsyncBytesCall = Callable[[str, bytes], Awaitable[bytes]]


def _health_verdict(answer: bytes) -> tuple[bool, str, str]:
    try:
        response = health_pb2.HealthCheckResponse.FromString(answer)
    except DecodeError:
        return False, "INTERNAL", f"INTERNAL: unreadable HealthCheckResponse ({len(answer)} bytes)"
    state = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    return response.status == health_pb2.HealthCheckResponse.SERVING, "OK", f"health service: {state}"


def _needs_probe(error: grpc.RpcError) -> bool:
    return status_name(error) in ("UNIMPLEMENTED", "NOT_FOUND")


def _probe_verdict(error: grpc.RpcError | None, target: str) -> tuple[bool, str, str]:
    status = "OK" if error is None else status_name(error)
    if error is None or status in LOG_SERVICE_ANSWERS:
        return True, status, "LogService answers (no health service)"
    if status == "UNIMPLEMENTED":
        return False, status, f"{status}: {target} is not a logservice.LogService"
    return False, status, error_message(error, target)


def _result(verdict: tuple[bool, str, str], target: str, method: str, started: float) -> HealthResult:
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    return HealthResult(verdict[0], target, verdict[1], verdict[2], method, latency_ms)


def check(call: BytesCall, target: str) -> HealthResult:
    """Check a target through a blocking bytes call (raising grpc.RpcError)."""
    started = time.perf_counter()
    try:
        return _result(_health_verdict(call(HEALTH_PATH, HEALTH_REQUEST)), target, "health", started)
    except grpc.RpcError as error:
        if not _needs_probe(error):
            return _result((False, status_name(error), error_message(error, target)), target, "health", started)
    try:
        call(PROBE_PATH, PROBE_REQUEST)
        return _result(_probe_verdict(None, target), target, "probe", started)
    except grpc.RpcError as error:
        return _result(_probe_verdict(error, target), target, "probe", started)


async def check_async(call: AsyncBytesCall, target: str) -> HealthResult:
    """Check a target through an awaitable bytes call (raising grpc.RpcError)."""
    started = time.perf_counter()
    try:
        return _result(_health_verdict(await call(HEALTH_PATH, HEALTH_REQUEST)), target, "health", started)
    except grpc.RpcError as error:
        if not _needs_probe(error):
            return _result((False, status_name(error), error_message(error, target)), target, "health", started)
    try:
        await call(PROBE_PATH, PROBE_REQUEST)
        return _result(_probe_verdict(None, target), target, "probe", started)
    except grpc.RpcError as error:
        return _result(_probe_verdict(error, target), target, "probe", started)
