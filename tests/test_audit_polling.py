"""How the audit decides: reached, settled below acked with its barrier stored (lost), or still storing or not even
storing the barrier at the timeout (unsettled).

The service is replaced by scripted sequences of stored counts (this run's, and other logs the service stores
meanwhile) behind the audit's own call seam; the audit against a real server is in test_audit.py.
"""

from __future__ import annotations

import grpc

from grpc_user.locust.audit.barrier import BARRIER_KEY
from grpc_user.locust.audit.delivery import audit_delivery
from grpc_user.pb import log_service_pb2 as pb


class Clock:
    """A fake monotonic clock moved by the audit's sleep."""

    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def scripted(counts: list[int], others: list[int], clock: Clock, monkeypatch, barrier_after: int | None = 1,
             barrier_refused: grpc.StatusCode | None = None, barriers_dropped: int = 0):  # fmt: skip
    """Each poll takes the next of this run's ``counts`` and of the ``others`` stored (the last ones repeat). A
    barrier written is stored ``barrier_after`` polls later (None: dropped, never stored); ``barrier_refused``: the
    status every WriteLog fails with; the first ``barriers_dropped`` barriers are never stored."""
    monkeypatch.setattr("grpc_user.locust.audit.delivery.time.monotonic", lambda: clock.now)
    remaining, other = iter(counts), iter(others)
    now = {"run": 0, "others": 0, "polls": 0}
    barriers: list[int] = []  # the poll each barrier was written at

    def call(path: str, payload: bytes) -> bytes:
        if path.endswith("/WriteLog"):
            if barrier_refused is not None:
                raise Refused(barrier_refused)
            barriers.append(now["polls"])
            return pb.WriteLogResponse(success=True, log_id="queued-1").SerializeToString()
        filters = pb.QueryLogRequest.FromString(payload).metadata_filters
        kept = barriers[barriers_dropped:]
        visible = len([at for at in kept if barrier_after is not None and now["polls"] - at >= barrier_after])
        if BARRIER_KEY in filters:
            return pb.QueryLogResponse(success=True, total_count=visible).SerializeToString()
        if filters:
            now["polls"] += 1
            now["run"], now["others"] = next(remaining, counts[-1]), next(other, others[-1])
            return pb.QueryLogResponse(success=True, total_count=now["run"]).SerializeToString()
        return pb.QueryLogResponse(success=True, total_count=now["run"] + now["others"] + visible).SerializeToString()

    return call


class Refused(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return "no"


def audit(counts: list[int], monkeypatch, acked: int = 100, timeout: float = 5, settle: float = 1,
          unreported_workers: tuple[str, ...] = (), others: list[int] | None = None, **barrier):  # fmt: skip
    clock = Clock()
    call = scripted(counts, others or [0], clock, monkeypatch, **barrier)
    return audit_delivery(call, run_id="r", acked=acked, timeout=timeout, settle=settle, sleep=clock.sleep,
                          unreported_workers=unreported_workers)  # fmt: skip


def test_reaching_the_acknowledged_count_is_ok(monkeypatch):
    result = audit([10, 60, 100], monkeypatch)
    assert (result.status, result.persisted, result.lost) == ("ok", 100, 0)


def test_a_count_that_stands_still_below_acked_then_a_stored_barrier_is_lost(monkeypatch):
    result = audit([10, 90, 90], monkeypatch)
    assert (result.status, result.lost) == ("lost", 10)
    assert result.detail.startswith("this run's stored count stood still for 1 s, then the service stored a log "
                                    "written after it (the audit's barrier"), result.detail  # fmt: skip


def test_a_flush_period_longer_than_the_settle_time_is_waited_for_never_called_lost(monkeypatch):
    """Issue 20's kind: 90 of 100 stored by full batches, the last 10 by a timer 3 s later (settle 1 s). The
    service stood still for 3 s; the barrier written then is stored with the 10, so nothing was lost."""
    flat = [90] * 12  # 3 s of polls
    result = audit([40, *flat, 100], monkeypatch, barrier_after=9)
    assert (result.status, result.persisted, result.lost_max) == ("ok", 100, 0), result


def test_a_barrier_never_stored_leaves_the_shortfall_unsettled_never_lost(monkeypatch):
    """A service that stores nothing more, not even a log written after the stop: a flush period longer than the
    audit's timeout, or a store that takes nothing. Either way nothing proves a loss."""
    result = audit([90], monkeypatch, timeout=4, barrier_after=None)
    assert (result.status, result.lost_min, result.lost_max) == ("unsettled", 0, 10), result
    assert "not even the log the audit wrote after the stop" in result.detail, result.detail
    assert "raise --audit-timeout" in result.detail


def test_a_service_that_refuses_the_barrier_is_never_called_lost(monkeypatch):
    """A new user's service took only registered service names: it refused the barrier (PERMISSION_DENIED), stored
    nothing for the settle time and flushed every 25 s. The audit, judging by the idle time, said LOST 3,944 of
    3,944, all stored 16 s later. Without a stored barrier nothing proves a loss: unsettled at the timeout."""
    denied = grpc.StatusCode.PERMISSION_DENIED
    result = audit([10, 90, 90], monkeypatch, timeout=4, barrier_refused=denied)
    assert (result.status, result.lost_min, result.lost_max) == ("unsettled", 0, 10), result
    assert "refused the audit's barrier (WriteLog answered PERMISSION_DENIED)" in result.detail, result.detail
    assert "raise --audit-timeout" in result.detail
    late = audit([10, *[90] * 12, 100], monkeypatch, timeout=10, barrier_refused=denied)  # the 10 come 3 s later
    assert (late.status, late.persisted) == ("ok", 100), late


def test_a_count_that_stands_still_while_the_service_stores_other_logs_is_waited_for(monkeypatch):
    # an earlier backlog stored first: this run's count stays flat for 2 s, then its logs come
    # The barrier written while this run's count stands still is queued behind its logs: stored after them.
    result = audit([0] * 8 + [50, 100], monkeypatch, others=list(range(0, 10_000, 300)), barrier_after=12)
    assert (result.status, result.persisted) == ("ok", 100), result


def test_a_service_still_storing_other_logs_at_the_timeout_is_unsettled_never_lost(monkeypatch):
    result = audit([10], monkeypatch, timeout=3, others=list(range(0, 100_000, 300)), barrier_after=None)
    assert (result.status, result.lost_min, result.lost_max) == ("unsettled", 0, 90), result
    assert result.detail.startswith("the service was still storing 1,200 logs/s (0 of them this run's)"), result.detail


def test_a_count_still_rising_at_the_timeout_is_unsettled_with_an_estimate(monkeypatch):
    result = audit(list(range(0, 1000, 2)), monkeypatch, acked=1000, timeout=2)
    assert result.status == "unsettled"
    assert result.lost == 0 and 0 < result.lost_max < 1000, "not stored yet is not lost"
    assert "raise --audit-timeout" in result.detail and "s more needed" in result.detail


def test_with_a_worker_s_counts_missing_the_audit_waits_for_the_count_to_stand_still(monkeypatch):
    # acked is a lower bound when a worker's final counts never arrived: its logs keep arriving past it, and may
    # stand in for lost ones: delivery unknown, never ok
    result = audit([60, 100, 130, 150, 150], monkeypatch, unreported_workers=("w1",))
    assert (result.status, result.persisted, result.unexpected) == ("incomplete", 150, 50), result
    assert audit([60, 100, 130, 150, 150], monkeypatch).persisted == 100, "otherwise it stops at acked"


def test_an_interrupted_audit_claims_no_loss_and_counts_what_is_missing_as_at_most_lost(monkeypatch):
    clock = Clock()
    call = scripted([10, 40], [0], clock, monkeypatch)
    polls = iter(["", "", "SIGINT"])  # two polls, then a signal
    result = audit_delivery(call, run_id="r", acked=100, in_doubt=5, timeout=60, settle=30, sleep=clock.sleep,
                            interrupted_by=lambda: next(polls))  # fmt: skip
    assert (result.status, result.persisted, result.lost, result.lost_min) == ("interrupted", 40, 0, 0), result
    assert result.lost_max == 65, "missing like unsettled: 100 acknowledged + 5 in doubt - 40 stored"
    assert "lost=0..65" in result.summary()
    never_counted = audit_delivery(call, run_id="r", acked=100, timeout=60, settle=30, sleep=clock.sleep,
                                   interrupted_by=lambda: "SIGTERM")  # fmt: skip
    assert (never_counted.persisted, never_counted.lost_min, never_counted.lost_max) == (0, 0, 100), never_counted


def test_a_loss_on_a_service_busy_with_other_logs_is_lost_once_the_barrier_behind_it_is_stored(monkeypatch):
    """The new user's shared service: this run's count stopped at 90 of 100 while another run's logs kept coming.
    Waiting for the whole service to stand still never ended (unsettled, 'still storing this run'); the barrier
    written once this run's count stood still is stored after everything queued before it."""
    result = audit([90], monkeypatch, timeout=10, others=list(range(0, 100_000, 300)), barrier_after=3)
    assert (result.status, result.lost) == ("lost", 10), result


def test_dropped_barriers_are_written_again_every_two_seconds(monkeypatch):
    """At a 20% drop rate the first two barriers were dropped, and the backoff (settle, then twice that) wrote no
    third within the timeout: a real loss left unsettled."""
    result = audit([90], monkeypatch, settle=3, timeout=9, barriers_dropped=2)
    assert (result.status, result.lost, result.barriers) == ("lost", 10, 3), result


def test_a_service_slow_to_answer_the_counts_is_timed_to_the_verdict_and_stops_at_the_timeout(monkeypatch):
    """Each query takes 2 s (a frozen service answers at its deadline): the audit's duration is the whole wait, and
    its timeout is checked after the poll, not before it (a SIGSTOPped service: `audit took 20.5 s` after 30.6 s,
    with --audit-timeout 15)."""
    clock = Clock()
    call = scripted([0], [0], clock, monkeypatch, barrier_after=None)

    def slow(path: str, payload: bytes) -> bytes:
        clock.now += 2.0
        return call(path, payload)

    result = audit_delivery(slow, run_id="r", acked=100, timeout=15, settle=3, sleep=clock.sleep)
    assert result.status == "unsettled", result
    assert result.settle_seconds == clock.now, "the duration is the whole wait, to the verdict"
    assert clock.now < 15 + 3 * 2.0 + 1, "no poll starts after the timeout"
