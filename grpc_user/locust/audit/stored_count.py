"""The stored-count probe: how many logs of a run the service stores now, from one QueryLog filtered by the run
id's metadata only (``limit=1``, reading ``total_count``: the real service's level-filter quirk breaks a query by
service_name). The delivery audit polls it; the capacity search reads it at each step."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from google.protobuf.message import DecodeError

from grpc_user.calls import METHOD_PATHS, QUERY_LOG, RESPONSE_NAMES
from grpc_user.entries import RUN_ID_KEY
from grpc_user.locust.run.state import SuiteRun
from grpc_user.locust.run.target import run_target, target_call
from grpc_user.pb import log_service_pb2 as pb

QUERY_PATH = METHOD_PATHS[QUERY_LOG]
# A count (or a barrier write) failing with one of these may succeed later: the service under test is busy or flaky.
RETRYABLE = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"})
# The audit counts with a deadline of its own: a load's --grpc-timeout may be far shorter than a count takes.
AUDIT_QUERY_TIMEOUT_SECONDS = 10.0


def stored_count_request(filters: Mapping[str, str]) -> bytes:
    """QueryLog counting the logs whose metadata match every one of ``filters`` (exact matches only; {}: every stored
    log, so the real service applies no level filter either); limit 1, total_count is the answer."""
    return pb.QueryLogRequest(metadata_filters=dict(filters), limit=1).SerializeToString()


def count_matching(call: Callable[[str, bytes], bytes], filters: Mapping[str, str]) -> int:
    """How many logs the service stores whose metadata match ``filters`` ({}: how many it stores in all);
    RuntimeError when the answer says success=false or cannot be read, grpc.RpcError when the call fails."""
    answer = call(QUERY_PATH, stored_count_request(filters))
    try:
        response = pb.QueryLogResponse.FromString(answer)
    except DecodeError:
        raise RuntimeError(
            f"INTERNAL: unreadable {RESPONSE_NAMES[QUERY_LOG]} ({len(answer)} bytes): the target "
            "does not answer QueryLog as the log service does"
        ) from None
    if not response.success:
        raise RuntimeError(f"QueryLog answered success=false: {response.error_message or 'no message'}")
    return response.total_count


def count_stored(call: Callable[[str, bytes], bytes], run_id: str | None, key: str = RUN_ID_KEY) -> int:
    """How many logs the service stores with metadata <key>=<run_id> (``None``: how many it stores in all); raises
    as ``count_matching``."""
    return count_matching(call, {} if run_id is None else {key: run_id})


def audit_call(environment: Any, run: SuiteRun) -> Callable[[str, bytes], bytes]:
    """A call to the run's target with the audit's deadline (at least ``AUDIT_QUERY_TIMEOUT_SECONDS``)."""
    return target_call(run, run_target(environment), max(run.settings.grpc_timeout, AUDIT_QUERY_TIMEOUT_SECONDS))


def stored_count(environment: Any, run: SuiteRun) -> int:
    """How many logs of this test the service stores now (the audit's count)."""
    return count_stored(audit_call(environment, run), run.settings.run_id)
