"""The suite's figures ride on Locust's stats reports: each worker adds its log counts, latency, service time,
phases, arrivals, peers and freshness to every report, and the master merges them into its own; they follow every
reset of Locust's stats (the web UI's Reset Stats, ``--reset-stats``)."""

from __future__ import annotations

import logging
import time
from typing import Any

from locust.runners import MasterRunner

from grpc_user.locust.counts.arrivals import REPORT_KEY as ARRIVALS_REPORT_KEY
from grpc_user.locust.counts.latency import REPORT_KEY as LATENCY_REPORT_KEY
from grpc_user.locust.counts.latency import SERVICE_TIME_REPORT_KEY
from grpc_user.locust.counts.logs import REPORT_KEY
from grpc_user.locust.counts.peers import REPORT_KEY as PEERS_REPORT_KEY
from grpc_user.locust.counts.phases import REPORT_KEY as PHASE_REPORT_KEY
from grpc_user.locust.freshness.probe import HANDOFF_KEY as FRESHNESS_HANDOFF_KEY
from grpc_user.locust.freshness.probe import REPORT_KEY as FRESHNESS_REPORT_KEY
from grpc_user.locust.run.state import SuiteRun, all_environments, all_runs

logger = logging.getLogger(__name__)


def on_report_to_master(client_id: str, data: dict[str, Any], **_: Any) -> None:
    """Workers add their log counts to every stats report."""
    for run in all_runs():
        data[REPORT_KEY] = run.counter.take_report()
        data[PEERS_REPORT_KEY] = run.peers.take_report()
        data[LATENCY_REPORT_KEY] = run.latency.drain()
        data[SERVICE_TIME_REPORT_KEY] = run.service_time.drain()
        data[PHASE_REPORT_KEY] = run.phases.take_report()
        data[ARRIVALS_REPORT_KEY] = run.arrival_counts.take_report()
        if run.freshness is not None:
            data[FRESHNESS_REPORT_KEY] = run.freshness.take_report()


def on_worker_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
    """The master adds each worker's log counts to its own. Locust fires this event for a stats message from any
    node, also one that is not this master's worker (another test's worker on the same port, a worker of another
    version): such a report is ignored with a warning, never merged, so it can neither skew nor crash the run."""
    for environment, run in all_environments():
        runner = environment.runner
        if isinstance(runner, MasterRunner) and client_id not in runner.clients:
            logger.warning("Ignored a stats report from %s, which is not a worker of this test", client_id)
            continue
        run.counter.merge_report(data.get(REPORT_KEY) or {})
        run.peers.merge_report(data.get(PEERS_REPORT_KEY) or {})
        run.latency.merge(data.get(LATENCY_REPORT_KEY) or [])
        run.service_time.merge(data.get(SERVICE_TIME_REPORT_KEY) or [])
        run.phases.merge_report(data.get(PHASE_REPORT_KEY) or [])
        run.arrival_counts.merge_report(data.get(ARRIVALS_REPORT_KEY) or [])
        if run.freshness is not None:
            run.freshness.merge_report(data.get(FRESHNESS_REPORT_KEY) or {}, client_id)
            if FRESHNESS_HANDOFF_KEY in data:
                run.freshness.adopt(data[FRESHNESS_HANDOFF_KEY], time.monotonic(), client_id)


def on_reset_stats(**_: Any) -> None:
    """Reset Stats in the web UI resets the per-RPC log counts and latency too (not the audit's totals)."""
    for run in all_runs():
        _reset_suite_stats(run)


def on_spawning_complete(user_count: int, **_: Any) -> None:
    """``--reset-stats``: Locust resets its stats when spawning completes, without firing ``reset_stats``; the suite's
    per-RPC counts and latency follow (not the audit's totals). The master notes how many workers run the test."""
    for environment, run in all_environments():
        if isinstance(environment.runner, MasterRunner):
            run.workers = max(run.workers, environment.runner.worker_count)
        if getattr(environment, "reset_stats", False):
            _reset_suite_stats(run)


def _reset_suite_stats(run: SuiteRun) -> None:
    run.counter.reset_stats()
    run.peers.reset_stats()
    run.latency.reset()
    run.service_time.reset()
    run.arrival_counts.reset_stats()
    if run.freshness is not None:
        run.freshness.reset_stats()


def register(events: Any) -> None:
    """Add the stats reports' listeners to Locust's ``events``; the plugin's root calls it once."""
    events.report_to_master.add_listener(on_report_to_master)
    events.worker_report.add_listener(on_worker_report)
    events.reset_stats.add_listener(on_reset_stats)
    events.spawning_complete.add_listener(on_spawning_complete)
