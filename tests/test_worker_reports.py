"""The master merges the suite's figures from its own workers' stats reports only: Locust fires ``worker_report`` for
a stats message from any node, and a stranger's report (another test's worker on the same port, a worker of another
version whose freshness hand-off has another shape) once crashed a clean run with exit code 2."""

from __future__ import annotations

import locust
import pytest
from locust.env import Environment
from locust.runners import WorkerNode
from locust_runs import free_port

from grpc_user.locust.counts.logs import REPORT_KEY
from grpc_user.locust.freshness.probe import HANDOFF_KEY
from grpc_user.locust.run.state import suite_run
from grpc_user.locust.workloads import SingleWriteUser


@pytest.fixture
def master():
    environment = Environment(events=locust.events, user_classes=[SingleWriteUser])
    runner = environment.create_master_runner("127.0.0.1", free_port())
    yield environment, runner
    runner.quit()


def test_a_report_from_a_node_that_is_not_a_worker_of_this_test_is_ignored(master):
    environment, runner = master
    run = suite_run(environment)
    counts = {"WriteLog": [10, 10, 10, 0, 10, 0]}
    foreign_handoff = [["token", 1, "WriteLog", "2026-11-30T00:00:00Z", 1.0, 0.5, 0, "an extra field"]]
    environment.events.worker_report.fire(client_id="stranger", data={REPORT_KEY: counts, HANDOFF_KEY: foreign_handoff})
    assert run.counter.audit_acked == 0, "a stranger's counts are not this test's"

    runner.clients["worker-1"] = WorkerNode("worker-1")
    environment.events.worker_report.fire(client_id="worker-1", data={REPORT_KEY: counts})
    assert run.counter.audit_acked == 10, "this test's worker's counts are merged"
