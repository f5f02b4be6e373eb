"""The end of a test, on the master or the single process: final counts, run files, delivery audit.

A test ends one way however it is stopped (``-t``, ``--max-requests``, STOP, Ctrl-C, SIGTERM, a
lost worker): users stop taking work and their calls in flight finish and are counted
(``grpc_user.locust.user.session``), the workers' final counts arrive (``grpc_user.locust.lifecycle.distributed``), then
the audit runs, then its files are written; a quitting process waits for all of it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import gevent
from locust.runners import STATE_CLEANUP, STATE_STOPPED, STATE_STOPPING, MasterRunner

from grpc_user.histograms import AGGREGATED, LatencyHistograms
from grpc_user.locust.actions.runner import end_actions, running_actions
from grpc_user.locust.audit.delivery import AuditResult, exit_code
from grpc_user.locust.audit.run_audit import delivery_audit, delivery_audit_by_phase
from grpc_user.locust.counts.arrivals import DROP_CAUSES
from grpc_user.locust.freshness.files import shown_ms
from grpc_user.locust.freshness.files import summary_line as freshness_line
from grpc_user.locust.freshness.lifecycle import finish_probe
from grpc_user.locust.lifecycle.distributed import wait_for_final_counts
from grpc_user.locust.run.csv_files import csv_prefix
from grpc_user.locust.run.exit_codes import FAILED
from grpc_user.locust.run.progress import WaitProgress
from grpc_user.locust.run.state import SuiteRun
from grpc_user.locust.run.target import run_target
from grpc_user.locust.transport.bridge import Transports
from grpc_user.results import OK
from grpc_user.run_files import (
    write_arrivals,
    write_audit,
    write_histograms,
    write_latency,
    write_logs,
    write_peers,
    write_run_info,
)
from grpc_user.run_files.schema import SERVICE_TIME

logger = logging.getLogger(__name__)
summary_logger = logging.getLogger("locust.stats_logger")


def end_test(environment: Any, run: SuiteRun) -> None:
    """At ``test_stop``: the workers' final counts, the run files, then the audit in its own greenlet."""
    run.stopped_at = time.time()
    if run.history_greenlet is not None:
        run.history_greenlet.kill(block=False)
    if isinstance(environment.runner, MasterRunner):
        wait_for_final_counts(environment, run)
    end_actions(environment, csv_prefix(environment), kill_running=False)
    write_run_files(environment, run)
    finished_transports = run.transports.take()
    run.audit, run.phase_audits = None, []
    run.audit_greenlet = gevent.spawn(finish_audit, environment, run, run.settings.run_id, finished_transports,
                                      run.freshness)  # fmt: skip


def write_run_files(environment: Any, run: SuiteRun) -> None:
    """The final history row, the logs totals, the latency split and the run parameters."""
    prefix = csv_prefix(environment)
    if not prefix or run.history is None:
        return
    run.peers.finish()
    append_history(environment, run)
    run.history.close()
    run.history = None
    write_logs(prefix, run.counter.by_name, run.counter.total())
    write_peers(prefix, run.peers.by_peer, listed_peers(environment))
    write_latency(prefix, run.latency)
    histograms: dict[str, LatencyHistograms] = {"latency": run.latency}
    if run.settings.arrival_rate is not None:  # latency counts from the scheduled start; this from the send
        write_latency(prefix, run.service_time, SERVICE_TIME)
        histograms["service_time"] = run.service_time
    write_histograms(prefix, histograms)
    if run.arrivals_history is not None:
        run.arrivals_history.close()
        run.arrivals_history = None
        arrivals = run.arrival_counts
        write_arrivals(prefix, arrivals.made, {cause: arrivals.dropped.get(cause, 0) for cause in DROP_CAUSES})
    write_run_info(prefix, run_info(environment, run))


def append_history(environment: Any, run: SuiteRun) -> None:
    """A row of the counts so far in each history file of the test (once per stats interval, and at its end)."""
    user_count = environment.runner.user_count
    if run.history is not None:
        run.history.append(user_count, run.counter.by_name, run.counter.total(), run.peers.by_peer)
    if run.arrivals_history is not None:
        arrivals = run.arrival_counts
        run.arrivals_history.append(user_count, arrivals.made, arrivals.total_dropped)


def listed_peers(environment: Any) -> tuple[str, ...]:
    """The server addresses the run's target lists (an ``ipv4:``/``ipv6:`` list), as grpc names its peers."""
    try:
        return run_target(environment).listed_peers
    except ValueError:
        return ()


def finish_audit(environment: Any, run: SuiteRun, run_id: str, finished_transports: Transports,
                 probe: Any = None) -> None:  # fmt: skip
    """Run the delivery audit of test ``run_id`` (progress shows in the web UI), record it, set the exit code;
    then finish its freshness ``probe`` (the samples not visible by the end of a settled audit never were)."""

    shown: list[WaitProgress] = []

    def progress(partial: AuditResult) -> None:
        if run.settings.run_id == run_id:
            run.audit = partial.as_dict()
        if not shown:
            shown.append(WaitProgress("Delivery audit: stored", partial.acked + partial.in_doubt))
        shown[0].update(partial.persisted)

    try:
        result = delivery_audit(environment, run, progress)
    finally:
        for bar in shown:
            bar.close()
    same_test = run.settings.run_id == run_id
    freshness = finish_probe(environment, run, probe, csv_prefix(environment) if same_test else "", result)
    if not same_test:  # a new test started in the web UI meanwhile: only the log keeps it
        logger.info("%s", result.summary())
        if freshness is not None:
            logger.info("%s", freshness_line(freshness))
        finished_transports.close()
        return
    run.phase_audits = delivery_audit_by_phase(environment, run, result)
    run.audit = result.as_dict()
    if not getattr(environment.parsed_options, "headless", False):  # a web UI runs on: say it now, not at its quit
        logger.info("%s", result.summary())
    for phase in run.phase_audits:
        logger.log(logging.ERROR if phase["status"] in ("lost", "unsettled", "incomplete") else logging.INFO,
                   "Delivery audit, phase %d: %s", phase["phase"], phase["sentence"])  # fmt: skip
    run.freshness_figures = freshness
    prefix = csv_prefix(environment)
    if prefix:
        write_audit(prefix, result.as_dict(), run.phase_audits)
        write_run_info(prefix, run_info(environment, run))
    code = exit_code(result, run.settings.audit_allow_loss)
    if result.status == "lost" and code:
        logger.error("%s (exit code %d; --audit-allow-loss accepts it)", result.sentence(), code)
    elif result.status in ("unsettled", "incomplete"):
        logger.error("%s (exit code %d): %s", result.sentence(), code, result.detail)
    elif result.status == "interrupted":
        logger.error("%s (exit code %d)", result.sentence(), code)
    elif result.status == "error":
        logger.error("Delivery audit failed (exit code %d): %s", code, result.detail)
    if code:
        environment.process_exit_code = code
    finished_transports.close()
    if environment.runner.state in (STATE_STOPPED, STATE_STOPPING, STATE_CLEANUP):  # no new test uses them
        run.transports.close()


def print_logs_summary(environment: Any, run: SuiteRun) -> None:
    """Logs sent, acknowledged and in doubt per RPC, and the audit line, next to Locust's request table."""
    if run.counter.by_name:
        duration = max((run.stopped_at or time.time()) - run.started_at, 1e-9)
        summary_logger.info("Logs per RPC (run id %s):", run.settings.run_id)
        header = ("Name", "# reqs", "logs sent", "logs acked", "in doubt", "rejected", "acked/s")
        summary_logger.info("%-20s %10s %12s %12s %10s %12s %12s", *header)
        for name, logs in sorted(run.counter.by_name.items()) + [(AGGREGATED, run.counter.total())]:
            row = (name, logs.requests, logs.sent, logs.acked, logs.in_doubt, logs.rejected, logs.acked / duration)
            summary_logger.info("%-20s %10d %12d %12d %10d %12d %12.1f", *row)
    rows = list(run.latency.rows())
    if any(outcome != OK for _, outcome, _ in rows):
        summary_logger.info("Latency by outcome (ms, HDR histograms), failed calls apart from successful ones:")
        summary_logger.info("%-20s %-20s %8s %10s %10s %10s %10s", "Name", "Outcome", "# calls", "avg", "50%", "95%",
                            "max")  # fmt: skip
        for name, outcome, summary in rows:
            marks = summary.percentiles_ms
            summary_logger.info("%-20s %-20s %8d %10.3f %10.3f %10.3f %10.3f", name, outcome, summary.count,
                                summary.mean_ms, marks[50.0], marks[95.0], summary.max_ms)  # fmt: skip
    if run.arrival_counts.offered:
        summary_logger.info("%s", run.arrival_counts.summary())
    if run.audit is not None:
        summary_logger.info("%s", AuditResult(**run.audit).summary())
    for phase in run.phase_audits:
        summary_logger.info("  phase %d %s", phase["phase"], phase["sentence"])
    for action in running_actions(environment).outcomes:
        summary_logger.info("  %s", action.sentence())
    if run.freshness_figures is not None:
        print_freshness_summary(run.freshness_figures)


def print_freshness_summary(data: dict[str, Any]) -> None:
    """Visibility latency per RPC (ms) and, with ``--action``, per phase; the samples never visible and unknown, by
    name, and the probe's own calls."""
    summary_logger.info("Visibility latency per RPC (ms), acknowledgement to the first QueryLog that returns the log:")
    summary_logger.info("%-20s %8s %8s %8s %8s %8s %8s %8s %8s", "Name", "samples", "visible", "never", "unknown",
                        "50%", "95%", "99%", "max")  # fmt: skip
    phases = [(f"phase {row['phase']}", row) for row in data.get("phases", [])]
    for name, row in [*data["by_name"].items(), (AGGREGATED, data["aggregated"]), *phases]:
        summary_logger.info("%-20s %8d %8d %8d %8d %8s %8s %8s %8s", name, row["samples"], row["visible"],
                            row["never_visible"], row.get("unknown", 0),
                            *(shown_ms(row[key]) for key in ("p50", "p95", "p99", "max")))  # fmt: skip
    for row in data.get("phases", []):
        if row.get("no_sample_because"):
            summary_logger.info("  phase %d: no sample, no figure: %s", row["phase"], row["no_sample_because"])
    for sample in data["never_visible_samples"]:
        summary_logger.info("  never visible: %s sample %s of probe %s, acknowledged at %s", sample["name"],
                            sample["sample"], sample["probe"], sample["acked_at"])  # fmt: skip
    for sample in data.get("unknown_samples", []):
        summary_logger.info("  unknown: %s sample %s of probe %s, acknowledged at %s", sample["name"],
                            sample["sample"], sample["probe"], sample["acked_at"])  # fmt: skip
    summary_logger.info("freshness probe: %d QueryLog calls (%d failed), not in the request stats",
                        data["probe_queries"], data["probe_query_failures"])  # fmt: skip
    summary_logger.info("%s", freshness_line(data))


def fail_on_dropped_arrivals(environment: Any, run: SuiteRun) -> None:
    """An open model that could not offer its rate did not measure what was asked: exit 1 (Locust's code for
    failures) when nothing else set the exit code, with one line saying why."""
    dropped = run.arrival_counts.total_dropped
    if dropped and environment.process_exit_code is None:
        logger.error("%d of %d scheduled calls were dropped (exit code 1): %s", dropped, run.arrival_counts.offered,
                     run.arrival_counts.summary())  # fmt: skip
        environment.process_exit_code = FAILED


def run_info(environment: Any, run: SuiteRun) -> dict[str, Any]:
    """Run parameters for ``<prefix>_run.json`` (no secrets)."""
    options = environment.parsed_options
    locustfile = getattr(options, "locustfile", "") or ""
    stopped_at = run.stopped_at or None
    info = {
        "workload": Path(str(locustfile).split(",")[0]).stem if locustfile else "",
        "locustfile": locustfile,
        "users": getattr(options, "num_users", None) or environment.runner.target_user_count,
        "spawn_rate": getattr(options, "spawn_rate", None),
        "run_time": getattr(options, "run_time", None),
        "target": environment.host or "",
        "run_id": run.settings.run_id,
        "started_at": _iso(run.started_at),
        "stopped_at": _iso(stopped_at) if stopped_at else None,
        "duration_seconds": round(stopped_at - run.started_at, 3) if stopped_at else None,
        "workers": run.workers,
        "options": run.settings.public(),
    }
    if run.audit is not None:
        info["audit"] = run.audit
    outcomes = running_actions(environment).outcomes
    if outcomes:
        info["actions"] = [outcome.as_dict() for outcome in outcomes]
    return info


def _iso(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))
