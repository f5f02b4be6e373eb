"""The suite's master/worker messages: ``--max-requests`` leases, what a worker learnt of the store's pace for the
freshness probe (``freshness.learnt``), and each worker's final counts at a stop.

A stop ends the same way with workers as without: every worker still running is told to stop
(its calls in flight finish and are counted), sends Locust's last stats report with the suite's
counts, then ``FINAL_COUNTS``; the master waits for those before the audit and the files.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import gevent
from locust.rpc import Message
from locust.runners import STATE_MISSING, STATE_RUNNING, STATE_SPAWNING

from grpc_user.locust.freshness import learnt as freshness_learnt
from grpc_user.locust.freshness.lifecycle import hand_off
from grpc_user.locust.freshness.probe import HANDOFF_KEY as FRESHNESS_HANDOFF_KEY
from grpc_user.locust.run.budget import BudgetPool
from grpc_user.locust.run.state import SuiteRun, suite_run

logger = logging.getLogger(__name__)

BUDGET_ASK = "grpc_user_budget_ask"
BUDGET_GRANT = "grpc_user_budget_grant"
BUDGET_SPENT = "grpc_user_budget_spent"
FINAL_COUNTS = "grpc_user_final_counts"
# Beyond the calls' own deadline: a worker's stop, its last report and the network.
FINAL_COUNTS_MARGIN_SECONDS = 5.0
POLL_SECONDS = 0.05


def register_master_messages(environment: Any, budget_spent: Callable[[], object]) -> None:
    """The master answers lease requests, learns when leases are spent, relays what a worker learnt of the store's
    pace, and collects final counts."""
    runner = environment.runner

    def ask(environment: Any, msg: Message, **_: Any) -> None:
        run = suite_run(environment)
        if run.budget_pool is None or msg.data.get("run_id") != run.settings.run_id:
            return
        permits = run.budget_pool.grant(msg.node_id, int(msg.data["wanted"]))
        runner.send_message(BUDGET_GRANT, {"run_id": run.settings.run_id, "permits": permits}, client_id=msg.node_id)

    def spent(environment: Any, msg: Message, **_: Any) -> None:
        run = suite_run(environment)
        if run.budget_pool is not None and msg.data.get("run_id") == run.settings.run_id:
            if run.budget_pool.spent(msg.node_id):
                logger.info("--max-requests %d reached over every worker", run.settings.max_requests)
                budget_spent()

    def final_counts(environment: Any, msg: Message, **_: Any) -> None:
        suite_run(environment).final_counts_from.add(msg.node_id)

    runner.register_message(BUDGET_ASK, ask)
    runner.register_message(BUDGET_SPENT, spent)
    runner.register_message(FINAL_COUNTS, final_counts)
    freshness_learnt.register_master(environment)


def register_worker_messages(environment: Any) -> None:
    """A worker takes the master's lease grants, and what another worker learnt of the store's pace."""

    def grant(environment: Any, msg: Message, **_: Any) -> None:
        run = suite_run(environment)
        if msg.data.get("run_id") == run.settings.run_id:
            run.budget.grant(int(msg.data["permits"]))

    environment.runner.register_message(BUDGET_GRANT, grant)
    freshness_learnt.register_worker(environment)


def start_master_budget(run: SuiteRun) -> None:
    """The master keeps the ``--max-requests`` total and leases it to the workers that ask."""
    run.budget_pool = BudgetPool(run.settings.max_requests) if run.settings.max_requests else None
    run.budget.limit(None, lambda: None)


def start_worker_budget(environment: Any, run: SuiteRun) -> None:
    """A worker's permits come from the master, a lease at a time, as its users need them."""
    runner, run_id = environment.runner, run.settings.run_id
    if not run.settings.max_requests:
        run.budget.limit(None, lambda: None)
        return
    run.budget.lease(
        ask=lambda wanted: runner.send_message(BUDGET_ASK, {"run_id": run_id, "wanted": wanted}),
        lease_size=lambda: 2 * runner.user_count,
        on_spent=lambda: runner.send_message(BUDGET_SPENT, {"run_id": run_id}),
    )


def send_final_counts(environment: Any) -> None:
    """A worker whose users stopped: Locust's last stats report (the suite's counts ride on it), then FINAL_COUNTS."""
    runner = environment.runner
    report: dict[str, Any] = {}
    suite_run(environment).peers.finish()
    # The master keeps looking for its pending samples and settles its held ones; handed off first, then the report.
    handed_off = hand_off(suite_run(environment))
    environment.events.report_to_master.fire(client_id=runner.client_id, data=report)
    report[FRESHNESS_HANDOFF_KEY] = handed_off
    runner.send_message("stats", report)
    runner.send_message(FINAL_COUNTS, {"run_id": suite_run(environment).settings.run_id})


def wait_for_final_counts(environment: Any, run: SuiteRun) -> None:
    """The master at a stop: stop every worker still running, wait for every one's final counts."""
    runner = environment.runner
    running = [node.id for node in runner.clients.all if node.state in (STATE_RUNNING, STATE_SPAWNING)]
    for worker in running:
        if worker not in run.final_counts_from:
            runner.server.send_to_client(Message("stop", None, worker))
    waiting = set(running) - run.final_counts_from
    deadline = time.monotonic() + run.settings.grpc_timeout + FINAL_COUNTS_MARGIN_SECONDS
    while waiting and time.monotonic() < deadline:
        gevent.sleep(POLL_SECONDS)
        present = {node.id for node in runner.clients.all if node.state != STATE_MISSING}
        waiting = {worker for worker in waiting - run.final_counts_from if worker in present}
    missing = {node.id for node in runner.clients.all if node.state == STATE_MISSING}  # lost mid-run or since
    lacking = (set(running) | missing) - run.final_counts_from
    run.workers_without_final_counts = sorted(lacking)
    if lacking:
        logger.warning("final counts of %d worker(s) never arrived (%s): their counts up to their last report are "
                       "included", len(lacking), ", ".join(sorted(lacking)))  # fmt: skip
