"""The listeners that record calls, in-process on a real ``locust.env.Environment``: request events are fired as
``GrpcUser.client`` fires them (one per call, its ``CallRecord`` as ``call=``) and each listener's state is read.

Locust is in the test process without its gevent monkey-patching (``tests/unpatched_locust.py``, imported by
conftest.py): firing events needs no greenlets.
"""

from __future__ import annotations

import dataclasses
import time

import pytest
from locust.env import Environment

from grpc_user.calls import WRITE_LOG, write_request
from grpc_user.locust.counts.record import CallRecord
from grpc_user.locust.freshness.files import figures, strip_sentence, summary_line
from grpc_user.locust.freshness.probe import FreshnessProbe
from grpc_user.locust.lifecycle.recording import listen_to_calls
from grpc_user.locust.run.state import SuiteRun
from grpc_user.locust.settings.action_plan import Action, ActionPlan
from grpc_user.locust.settings.rates import parse_rate_schedule
from grpc_user.locust.settings.suite import SuiteSettings
from grpc_user.locust.user.failures import GrpcCallFailure

ACTIONS = ActionPlan((Action(1, 10.0, "true"),))


@pytest.fixture
def environment():
    environment = Environment()
    environment.create_local_runner()  # Locust's own stats listener, beside the suite's
    return environment


def listening(environment, **settings) -> SuiteRun:
    run = SuiteRun(settings=dataclasses.replace(SuiteSettings(), **settings))
    listen_to_calls(environment, run)
    return run


def fire(environment, name: str, call: CallRecord | None, response_time: float = 2.5, cause: str = "OK") -> None:
    """One request event, shaped as the client fires it."""
    exception = None if cause == "OK" else GrpcCallFailure(cause, "detail")
    environment.events.request.fire(request_type="grpc", name=name, response_time=response_time,
                                    response_length=10, response=None, context={}, exception=exception,
                                    start_time=time.time(), url=f"grpc://t/{name}", call=call)  # fmt: skip


def test_log_counts_follow_each_call_record_per_request_name(environment):
    run = listening(environment)
    fire(environment, "WriteLog", CallRecord(1, 1, 0, 1, 0, "OK"))
    fire(environment, "BatchWriteLog", CallRecord(100, 60, 0, 60, 0, "PARTIAL_BATCH"), cause="PARTIAL_BATCH")
    fire(environment, "BatchWriteLog", CallRecord(100, 0, 100, 0, 90, "DEADLINE_EXCEEDED"), cause="DEADLINE_EXCEEDED")
    write, batch = run.counter.by_name["WriteLog"], run.counter.by_name["BatchWriteLog"]
    assert (write.requests, write.sent, write.acked, write.in_doubt, write.rejected) == (1, 1, 1, 0, 0)
    assert (batch.requests, batch.sent, batch.acked, batch.in_doubt, batch.rejected) == (2, 200, 60, 100, 40)
    assert (run.counter.run_sent, run.counter.audit_acked, run.counter.audit_in_doubt) == (201, 61, 90)
    assert run.counter.take_report() == {"WriteLog": [1, 1, 1, 0, 1, 0], "BatchWriteLog": [2, 200, 60, 100, 60, 90]}
    assert environment.stats.total.num_requests == 3, "Locust's own stats see the same three calls"


def test_request_events_without_a_call_record_are_left_to_locust(environment):
    run = listening(environment)
    fire(environment, "some other plugin's request", None)
    assert run.counter.by_name == {} and run.latency.by_key == {}
    assert environment.stats.total.num_requests == 1


def test_the_latency_split_keeps_successes_and_each_failure_cause_apart_in_microseconds(environment):
    run = listening(environment)
    fire(environment, "WriteLog", CallRecord(1, 1, 0, 1, 0, "OK"), response_time=2.5)
    fire(environment, "WriteLog", CallRecord(1, 1, 0, 1, 0, "OK"), response_time=4.0)
    fire(environment, "WriteLog", CallRecord(1, 0, 0, 0, 0, "RESOURCE_EXHAUSTED"), response_time=0.3,
         cause="RESOURCE_EXHAUSTED")  # fmt: skip
    ok, refused = run.latency.by_key[("WriteLog", "OK")], run.latency.by_key[("WriteLog", "RESOURCE_EXHAUSTED")]
    assert (ok.count, ok.low(), ok.high()) == (2, 2500, 4000)
    assert (refused.count, refused.low(), refused.high()) == (1, 300, 300)


def test_service_time_is_recorded_in_the_open_model_only_from_the_records_service_time(environment):
    closed = listening(environment)
    fire(environment, "WriteLog", CallRecord(1, 1, 0, 1, 0, "OK", service_us=700))
    assert closed.service_time.by_key == {}, "no listener for service time in a closed model"
    open_model = listening(environment, arrival_rate=parse_rate_schedule("100"))
    fire(environment, "WriteLog", CallRecord(1, 1, 0, 1, 0, "OK", scheduled=time.time() - 1, service_us=700),
         response_time=1000.7)  # fmt: skip
    service, latency = open_model.service_time.by_key[("WriteLog", "OK")], open_model.latency.by_key[("WriteLog", "OK")]
    assert (service.count, service.high()) == (1, 700), "from sending the call to its answer"
    assert latency.high() == 1_000_700, "from the scheduled start"


def test_phase_counts_listen_only_with_actions_and_count_each_call_under_its_phase(environment):
    without = listening(environment)
    fire(environment, "WriteLog", CallRecord(1, 1, 0, 1, 0, "OK", phase=0))
    assert without.phases.by_phase == {}
    run = listening(environment, actions=ACTIONS)
    fire(environment, "BatchWriteLog", CallRecord(10, 10, 0, 10, 0, "OK", phase=0))
    fire(environment, "BatchWriteLog", CallRecord(10, 0, 10, 0, 8, "UNAVAILABLE", phase=1), cause="UNAVAILABLE")
    fire(environment, "QueryLog", CallRecord(0, 0, 0, 0, 0, "OK"))  # a query carries no log and no phase
    before, after = run.phases.by_phase[0], run.phases.by_phase[1]
    assert (before.sent, before.acked, before.in_doubt, before.audit_acked) == (10, 10, 0, 10)
    assert (after.sent, after.acked, after.in_doubt, after.audit_in_doubt, after.rejected) == (10, 0, 10, 8, 0)
    assert sorted(run.phases.by_phase) == [0, 1]


def test_a_freshness_sample_is_looked_for_only_when_its_call_was_acknowledged_whole(environment):
    run = SuiteRun(settings=SuiteSettings())
    run.freshness = FreshnessProbe("run", rate=1000, poll_interval=0.1)
    listen_to_calls(environment, run)
    samples = [run.sampler.tag(WRITE_LOG, "WriteLog", write_request(f"log {n}"), time.monotonic()) for n in (0, 1)]
    before = time.monotonic()
    fire(environment, "WriteLog", CallRecord(1, 1, 0, 1, 0, "OK", sample=samples[0]))
    fire(environment, "WriteLog", CallRecord(1, 0, 1, 0, 1, "DEADLINE_EXCEEDED", sample=samples[1]),
         cause="DEADLINE_EXCEEDED")  # fmt: skip
    pending = list(run.freshness.pending)
    assert [(sample.number, sample.name) for sample in pending] == [(0, "WriteLog")]
    assert pending[0].acked_at >= before
    assert run.freshness.samples == {"WriteLog": 1}


def test_the_sampler_listens_only_while_a_sampled_call_is_in_flight(environment):
    run = SuiteRun(settings=SuiteSettings())
    run.freshness = FreshnessProbe("run", rate=1000, poll_interval=0.1)
    listen_to_calls(environment, run)
    sampled = run.sampler.tag(WRITE_LOG, "WriteLog", write_request("sampled"), time.monotonic())
    fire(environment, "WriteLog", CallRecord(1, 1, 0, 1, 0, "OK", sample=sampled))
    assert len(run.freshness.pending) == 1
    untracked = run.freshness.tag(WRITE_LOG, "WriteLog", write_request("not the sampler's"), time.monotonic())
    fire(environment, "WriteLog", CallRecord(1, 1, 0, 1, 0, "OK", sample=untracked))
    assert len(run.freshness.pending) == 1, "no sampled call of the sampler in flight: no listener"


def test_each_test_listens_once_whatever_the_tests_before_it(environment):
    run = SuiteRun(settings=SuiteSettings(actions=ACTIONS))
    for _ in range(3):  # three tests of one web UI session
        listen_to_calls(environment, run)
    fire(environment, "WriteLog", CallRecord(1, 1, 0, 1, 0, "OK", phase=0))
    assert run.counter.by_name["WriteLog"].requests == 1
    assert run.latency.by_key[("WriteLog", "OK")].count == 1
    assert run.phases.by_phase[0].sent == 1
    run.settings = SuiteSettings()  # the next test has no actions: the phase listener is gone
    listen_to_calls(environment, run)
    fire(environment, "WriteLog", CallRecord(1, 1, 0, 1, 0, "OK", phase=0))
    assert (run.counter.by_name["WriteLog"].requests, run.phases.by_phase[0].sent) == (2, 1)


def test_while_no_call_is_sampled_one_call_a_second_is_heard_and_a_service_that_stopped_is_named(environment):
    """Issue 25: the reference server killed between the probe's learning and its first window: no sampled call
    failed, so the line blamed the test's stop ('a coarse figure: the test stopped before ...'). While no call is
    sampled the sampler now hears one call a second (its listener subscribed for that call only: the others cost
    nothing more), and the words name the failing service."""
    run = SuiteRun(settings=SuiteSettings())
    probe = run.freshness = FreshnessProbe("run", rate=20, poll_interval=0.1, sampling=False)
    listen_to_calls(environment, run)
    request, start, heard = environment.events.request, time.monotonic(), 0
    for n in range(300):  # 100 calls/s for 3 s, the service gone from 1.5 s on
        now = start + n / 100
        if now >= run.sampler.due:
            assert run.sampler.tag(WRITE_LOG, "WriteLog", write_request("x"), now) is None, "not sampling"
        heard += run.sampler.on_request in request._handlers
        record = CallRecord(1, 0, 0, 0, 0, "UNAVAILABLE") if n >= 150 else CallRecord(1, 1, 0, 1, 0, "OK")
        fire(environment, "WriteLog", record, cause=record.cause)
    assert heard == 3, "the calls at 0, 1 and 2 s"
    assert probe.unacknowledged == 0 and probe.failing_status == "UNAVAILABLE" and probe.failing_since is not None
    probe.asked = 60.0
    running = figures(probe, 20)
    assert strip_sentence(running) == (
        f"Freshness: no figure yet: the service acknowledged no call (none from {running['failing_since_s']:,.1f} s "
        f"into the test so far, the last acknowledged at {running['last_acked_s']:,.1f} s; UNAVAILABLE)"
    )
    line = summary_line(figures(probe, 20, "done"))
    assert "; sampled 0 of 60 asked: the service acknowledged no call (none from " in line, line
    assert "into the test to its end" in line and "the test stopped" not in line, line
