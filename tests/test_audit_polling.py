"""How the audit decides: reached, settled below acked (lost), or still storing at the timeout (unsettled).

The service is replaced by scripted sequences of stored counts (this run's, and other logs the service stores
meanwhile) behind the audit's own call seam; the audit against a real server is in test_audit.py.
"""

from __future__ import annotations

from grpc_user.locust.audit.delivery import audit_delivery
from grpc_user.pb import log_service_pb2 as pb


class Clock:
    """A fake monotonic clock moved by the audit's sleep."""

    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def scripted(counts: list[int], others: list[int], clock: Clock, monkeypatch):
    """Each poll takes the next of this run's ``counts`` and of the ``others`` stored (the last ones repeat)."""
    monkeypatch.setattr("grpc_user.locust.audit.delivery.time.monotonic", lambda: clock.now)
    remaining, other = iter(counts), iter(others)
    now = {"run": 0, "others": 0}

    def call(path: str, payload: bytes) -> bytes:
        if pb.QueryLogRequest.FromString(payload).metadata_filters:
            now["run"], now["others"] = next(remaining, counts[-1]), next(other, others[-1])
            return pb.QueryLogResponse(success=True, total_count=now["run"]).SerializeToString()
        return pb.QueryLogResponse(success=True, total_count=now["run"] + now["others"]).SerializeToString()

    return call


def audit(counts: list[int], monkeypatch, acked: int = 100, timeout: float = 5, settle: float = 1,
          until_settled: bool = False, others: list[int] | None = None):  # fmt: skip
    clock = Clock()
    call = scripted(counts, others or [0], clock, monkeypatch)
    return audit_delivery(call, run_id="r", acked=acked, timeout=timeout, settle=settle, sleep=clock.sleep,
                          until_settled=until_settled)  # fmt: skip


def test_reaching_the_acknowledged_count_is_ok(monkeypatch):
    result = audit([10, 60, 100], monkeypatch)
    assert (result.status, result.persisted, result.lost) == ("ok", 100, 0)


def test_a_count_that_stands_still_below_acked_is_lost(monkeypatch):
    result = audit([10, 90, 90], monkeypatch)
    assert (result.status, result.lost) == ("lost", 10)
    assert result.detail.startswith(
        "the service stored nothing for 1 s (--audit-settle; a service that flushes less "
        "often than that needs a longer --audit-settle)"
    )


def test_a_count_that_stands_still_while_the_service_stores_other_logs_is_waited_for(monkeypatch):
    # an earlier backlog stored first: this run's count stays flat for 2 s, then its logs come
    result = audit([0] * 8 + [50, 100], monkeypatch, others=list(range(0, 10_000, 300)))
    assert (result.status, result.persisted) == ("ok", 100), result


def test_a_service_still_storing_other_logs_at_the_timeout_is_unsettled_never_lost(monkeypatch):
    result = audit([10], monkeypatch, timeout=3, others=list(range(0, 100_000, 300)))
    assert (result.status, result.lost_min, result.lost_max) == ("unsettled", 0, 90), result
    assert result.detail.startswith("the service was still storing 1,200 logs/s, none of this run's"), result.detail


def test_a_count_still_rising_at_the_timeout_is_unsettled_with_an_estimate(monkeypatch):
    result = audit(list(range(0, 1000, 2)), monkeypatch, acked=1000, timeout=2)
    assert result.status == "unsettled"
    assert result.lost == 0 and 0 < result.lost_max < 1000, "not stored yet is not lost"
    assert "raise --audit-timeout" in result.detail and "s more needed" in result.detail


def test_with_a_worker_s_counts_missing_the_audit_waits_for_the_count_to_stand_still(monkeypatch):
    # acked is a lower bound when a worker's final counts never arrived: its logs keep arriving past it
    result = audit([60, 100, 130, 150, 150], monkeypatch, until_settled=True)
    assert (result.status, result.persisted, result.unexpected) == ("ok", 150, 50), result
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
