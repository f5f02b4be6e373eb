"""``GrpcUser.client``: the LogClient API where every RPC fires exactly one Locust request event.

The client only sends and fires, as Locust's ``HttpSession`` does: the event carries the call's
``CallRecord`` (``call=``: logs sent, acknowledged, rejected, in doubt, the scheduled start, the
service time, the phase, the freshness sample), and the suite's listeners count it. Before sending,
it takes a permit (``--max-requests``), waits for its scheduled start (``--arrival-rate``) and tags
the logs (run id, phase, freshness sample): what must happen before the request leaves.

A user stopped mid-call does not abandon the call: the request may already be acknowledged, so
the call finishes (its deadline bounds the wait), is counted and fires its event, then the user
stops. Logs sent through ``write_log`` and ``batch_write_logs`` carry the run id unless they set
their own; the delivery audit counts only those that carry it.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import grpc
from gevent import GreenletExit
from google.protobuf.message import DecodeError
from locust.exception import StopUser

from grpc_user import calls
from grpc_user.connection_watch import ConnectionWatch
from grpc_user.entries import RUN_ID_KEY
from grpc_user.locust.counts.phases import METADATA_KEY as PHASE_KEY
from grpc_user.locust.counts.record import CallRecord
from grpc_user.locust.open_model.clock import ArrivalClock
from grpc_user.locust.run.budget import RequestBudget
from grpc_user.locust.transport.bridge import LoopStopped, PendingCall
from grpc_user.locust.user.failures import GrpcCallFailure, failure_from_message
from grpc_user.pb import log_service_pb2 as pb
from grpc_user.results import OK, BatchResult, ChunkResult, QueryResult, WriteResult

BRIDGE_STOPPED = "BRIDGE_STOPPED"


class UnaryTransport(Protocol):
    """Sends serialized requests; waiting for the answer blocks only the calling greenlet; ``watch`` follows its
    channel's connectivity."""

    watch: ConnectionWatch

    def start_unary(self, path: str, payload: bytes, timeout: float) -> PendingCall: ...


class PhaseSource(Protocol):
    """The ``--action`` phase logs sent now are tagged with."""

    current: int


class LogSampler(Protocol):
    """Tags a log of a call due at ``due`` (``time.monotonic`` s) for sampling (the freshness probe's
    ``SampledCalls``); the sample rides in the call's ``CallRecord``."""

    due: float

    def tag(self, rpc: str, name: str, request: Any, now: float) -> Any: ...

    def untag(self, sample: Any) -> None: ...


class GrpcLogClient:
    """Kwargs-splitting client bound to one Locust user; results are returned, every call fires one request event.

    ``request_event``: the Environment's ``events.request``; ``context``: the user's ``context`` method;
    ``budget``: permits for ``--max-requests``; ``arrivals``: the open model's clock (None: closed model);
    ``phases``: tags each log with the current phase (None: no ``--action``); ``sampler``: the freshness
    probe that tags a log of a call due for sampling (None: ``--no-freshness``).
    """

    def __init__(
        self,
        *,
        transport: UnaryTransport,
        target: str,
        request_event: Any,
        context: Callable[[], dict],
        timeout: float,
        max_batch_size: int,
        budget: RequestBudget,
        run_id: str = "",
        arrivals: ArrivalClock | None = None,
        phases: PhaseSource | None = None,
        sampler: LogSampler | None = None,
    ) -> None:
        self.target = target
        self.run_id = run_id
        self.timeout = timeout
        self.max_batch_size = max_batch_size
        self._transport = transport
        self._fire = request_event.fire
        self._context = context
        self._budget = budget
        self._arrivals = arrivals
        self._phases = phases
        self._sampler = sampler
        self._urls = {rpc: f"{target}{path}" for rpc, path in calls.METHOD_PATHS.items()}

    def write_log(self, message: str, *, name: str | None = None, **kwargs: Any) -> WriteResult:
        """One WriteLog of ``message``, keywords split as in ``LogClient.write_log``; ``run_id`` defaults to the run."""
        if not self.run_id:
            return self._call(calls.WRITE_LOG, name, calls.write_request(message, **kwargs), 1, _write_outcome)
        kwargs.setdefault(RUN_ID_KEY, self.run_id)
        request = calls.write_request(message, **kwargs)
        tagged = int(request.log_entry.metadata.get(RUN_ID_KEY) == self.run_id)
        return self._call(calls.WRITE_LOG, name, request, 1, _write_outcome, tagged)

    def send_write(self, request: pb.WriteLogRequest, *, name: str | None = None) -> WriteResult:
        """One WriteLog of a ready request, sent as it is (``self.data``'s requests carry the run id)."""
        return self._call(calls.WRITE_LOG, name, request, 1, _write_outcome)

    def batch_write_logs(
        self, entries: Iterable[pb.LogEntry | Mapping[str, Any]], *, name: str | None = None
    ) -> BatchResult:
        """BatchWriteLog RPCs of at most ``max_batch_size`` entries; entries without a run id get the run's."""
        chunks = []
        for request in calls.batch_requests(entries, self.max_batch_size):
            tagged = self._tag(request.log_entries)
            sent = len(request.log_entries)
            chunks.append(self._call(calls.BATCH_WRITE_LOG, name, request, sent,
                                     functools.partial(_batch_outcome, sent=sent), tagged))  # fmt: skip
        return calls.batch_result(chunks)

    def send_batch(self, request: pb.BatchWriteLogRequest, *, name: str | None = None) -> ChunkResult:
        """One BatchWriteLog of a ready request, sent as it is (``self.data``'s requests carry the run id)."""
        sent = len(request.log_entries)
        return self._call(calls.BATCH_WRITE_LOG, name, request, sent, lambda raw: _batch_outcome(raw, sent))

    def _tag(self, entries: Iterable[pb.LogEntry]) -> int | None:
        """Give the run id to entries without one; return how many carry it (None: no run id to audit)."""
        if not self.run_id:
            return None
        tagged = 0
        for entry in entries:
            if RUN_ID_KEY not in entry.metadata:
                entry.metadata[RUN_ID_KEY] = self.run_id
            tagged += entry.metadata.get(RUN_ID_KEY) == self.run_id
        return tagged

    def query_logs(self, *, name: str | None = None, **filters: Any) -> QueryResult:
        """One QueryLog; unknown keywords become metadata filters."""
        return self._call(calls.QUERY_LOG, name, calls.query_request(**filters), 0, _query_outcome)

    def _call(
        self,
        rpc: str,
        name: str | None,
        request: Any,
        sent: int,
        outcome: Callable[[bytes], tuple[Any, int, GrpcCallFailure | None]],
        tagged: int | None = None,
    ) -> Any:
        """Take a permit, tag, wait for the scheduled start, send, fire one request event; ``tagged``: logs with the
        run id (None: all of them or no run id)."""
        if not self._budget.take():
            raise StopUser()
        name = name or rpc
        phase = None
        if self._phases is not None and sent:  # --action: each log carries the phase it was sent in
            phase = self._phases.current
            _tag_phase(request, str(phase))
        payload = request.SerializeToString()
        arrivals = self._arrivals
        scheduled = self._await_arrival(arrivals) if arrivals is not None else 0.0
        sampler, sample = self._sampler, None
        if sent and sampler is not None and time.monotonic() >= sampler.due:  # a log sampled for visibility latency
            sample = sampler.tag(rpc, name, request, time.monotonic())
            if sample is not None:  # sampled when it is sent, not while it waited for its scheduled start
                payload = request.SerializeToString()
                sampler.untag(sample)
        try:
            return self._send(rpc, name, payload, sent, outcome, tagged, scheduled, phase, sample)
        finally:
            if arrivals is not None and scheduled:
                arrivals.call_done()

    def _send(self, rpc: str, name: str, payload: bytes, sent: int,
              outcome: Callable[[bytes], tuple[Any, int, GrpcCallFailure | None]], tagged: int | None,
              scheduled: float, phase: int | None, sample: Any) -> Any:  # fmt: skip
        start_time = time.time()
        started = time.perf_counter()
        watch = self._transport.watch
        mark = watch.begin()
        try:
            call = self._transport.start_unary(calls.METHOD_PATHS[rpc], payload, self.timeout)
        except LoopStopped as stopped:
            watch.end()
            self._budget.release()
            failure = GrpcCallFailure(BRIDGE_STOPPED, str(stopped))
            self._fire(request_type=calls.REQUEST_TYPE, name=name, response_time=0.0, response_length=0,
                       response=_loop_failure(rpc, stopped, 0), context=self._context(), exception=failure,
                       start_time=start_time, url=self._urls[rpc],
                       call=CallRecord(0, 0, 0, 0, 0, BRIDGE_STOPPED))  # fmt: skip
            raise StopUser() from None
        try:
            raw, error, stopping = _outcome(call)
        except BaseException:  # interrupted by something other than a stop: nothing to count, the permit goes back
            watch.end()
            call.cancel()
            self._budget.refund()
            raise
        elapsed_ms = (time.perf_counter() - started) * 1000
        if error is None:
            try:
                result, acked, exception = outcome(raw)
                in_doubt, length = 0, len(raw)
            except DecodeError:  # status OK, but not the answer the contract defines: whatever it says is unknown
                exception = GrpcCallFailure("INTERNAL", f"unreadable {calls.RESPONSE_NAMES[rpc]} ({len(raw)} bytes)")
                result, acked, in_doubt, length = _failure(rpc, exception, sent), 0, sent, len(raw)
        elif isinstance(error, LoopStopped):
            result, acked, in_doubt, length = _loop_failure(rpc, error, sent), 0, sent, 0
            exception = GrpcCallFailure(BRIDGE_STOPPED, str(error))
        else:
            unknown = calls.outcome_unknown(error, watch.never_sent(mark))
            result, acked, length = _error_result(rpc, error, self.target, sent, unknown), 0, 0
            in_doubt = sent if unknown else 0
            exception = _status_failure(error)
        watch.end()
        service_us = int(elapsed_ms * 1000 + 0.5)
        if scheduled:  # an open model measures from when the call should have started: no coordinated omission
            elapsed_ms += max(start_time - scheduled, 0.0) * 1000
            start_time = scheduled
        audit_acked, audit_in_doubt = (acked, in_doubt) if tagged is None or tagged == sent else \
            _audited(sent, tagged, acked, in_doubt)  # fmt: skip
        record = CallRecord(sent, acked, in_doubt, audit_acked, audit_in_doubt, exception.cause if exception else OK,
                            scheduled, service_us, phase, sample)  # fmt: skip
        self._fire(request_type=calls.REQUEST_TYPE, name=name, response_time=elapsed_ms, response_length=length,
                   response=result, context=self._context(), exception=exception, start_time=start_time,
                   url=self._urls[rpc], call=record)  # fmt: skip
        self._budget.release()
        if stopping is not None:
            raise stopping
        return result

    def _await_arrival(self, arrivals: ArrivalClock) -> float:
        """Wait for this call's scheduled start (its epoch time)."""
        try:
            return arrivals.next_start()
        except BaseException:  # stopped before the call was sent: its permit goes back
            self._budget.refund()
            raise


def _tag_phase(request: Any, phase: str) -> None:
    """Set ``metadata.phase`` on every entry of a WriteLog or BatchWriteLog request."""
    entries = request.log_entries if isinstance(request, pb.BatchWriteLogRequest) else (request.log_entry,)
    for entry in entries:
        entry.metadata[PHASE_KEY] = phase


def _outcome(call: PendingCall) -> tuple[bytes, grpc.RpcError | LoopStopped | None, GreenletExit | None]:
    """The call's answer or error, and the stop request that arrived meanwhile (to raise once it is counted)."""
    stopping = None
    while True:
        try:
            return call.result(), None, stopping
        except GreenletExit as stop:  # the request is on the wire: wait for its answer, bounded by its deadline
            stopping = stop
        except (grpc.RpcError, LoopStopped) as error:
            return b"", error, stopping


def _audited(sent: int, tagged: int, acked: int, in_doubt: int) -> tuple[int, int]:
    """(acked, in doubt) among the ``tagged`` logs of a call where only some carry the run id.

    When the call was only partly accepted, which entries were accepted is not known: the sure
    part counts as acked, the rest of what may be acked as in doubt.
    """
    if in_doubt:
        return 0, tagged
    surely = max(0, acked - (sent - tagged))
    return surely, min(acked, tagged) - surely


def _loop_failure(rpc: str, error: LoopStopped, sent: int) -> Any:
    """The result of a call the bridge could not complete: its loop is gone."""
    return _failure(rpc, GrpcCallFailure(BRIDGE_STOPPED, str(error)), sent)


def _failure(rpc: str, exception: GrpcCallFailure, sent: int) -> Any:
    """The result of a call that got no readable answer (its loop is gone, or the answer cannot be parsed): the
    ``sent`` logs it carried are in doubt."""
    failure: dict[str, Any] = {"success": False, "error_message": str(exception), "status": exception.cause,
               "cause": exception.cause}  # fmt: skip
    if rpc == calls.WRITE_LOG:
        return WriteResult(**failure, in_doubt=bool(sent))
    if rpc == calls.BATCH_WRITE_LOG:
        return ChunkResult(sent=sent, accepted=0, **failure, in_doubt=bool(sent))
    return QueryResult(**failure)


def _write_outcome(raw: bytes) -> tuple[WriteResult, int, GrpcCallFailure | None]:
    result = calls.write_result(pb.WriteLogResponse.FromString(raw))
    if result.success:
        return result, 1, None
    return result, 0, failure_from_message(result.error_message)


def _batch_outcome(raw: bytes, sent: int) -> tuple[ChunkResult, int, GrpcCallFailure | None]:
    result = calls.chunk_result(pb.BatchWriteLogResponse.FromString(raw), sent)
    return result, result.accepted, None if result.success else failure_from_message(result.error_message)


def _query_outcome(raw: bytes) -> tuple[QueryResult, int, GrpcCallFailure | None]:
    result = calls.query_result(pb.QueryLogResponse.FromString(raw))
    return result, 0, None if result.success else failure_from_message(result.error_message)


def _status_failure(error: grpc.RpcError) -> GrpcCallFailure:
    """The request event's exception for a call that ended in a gRPC status (a refused stream named apart)."""
    if calls.refused_stream(error):
        return GrpcCallFailure(calls.REFUSED_STREAM, calls.REFUSED_STREAM_TEXT)
    return GrpcCallFailure(calls.status_name(error), error.details() or "")


def _error_result(rpc: str, error: grpc.RpcError, target: str, sent: int, in_doubt: bool) -> Any:
    if rpc == calls.WRITE_LOG:
        return calls.write_failure(error, target, in_doubt)
    if rpc == calls.BATCH_WRITE_LOG:
        return calls.chunk_failure(error, target, sent, in_doubt)
    return calls.query_failure(error, target)
