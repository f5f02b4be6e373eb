"""Locust event listeners that make the suite a plugin: options, run id, log counts, sidecars, budget.

Imported by ``grpc_user.locust_user``, so every locustfile with a GrpcUser gets them. Only the
master (or the single local process) writes files; workers report their counts to it.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from pathlib import Path
from typing import Any

import gevent
from locust import events
from locust.runners import MasterRunner, WorkerRunner
from locust.stats import CSV_STATS_INTERVAL_SEC

from grpc_user.audit import AuditResult
from grpc_user.checks import AUDIT_EXIT_CODE, delivery_audit, preflight, run_target, write_audit
from grpc_user.latency_split import REPORT_KEY as LATENCY_REPORT_KEY
from grpc_user.latency_split import write_latency_split
from grpc_user.log_counts import REPORT_KEY
from grpc_user.options import register_options
from grpc_user.request_budget import split_total
from grpc_user.settings import OptionError, new_run_id, settings_from_options
from grpc_user.sidecars import LogsHistoryWriter, write_logs_totals, write_run_info
from grpc_user.suite_run import SuiteRun, all_runs, suite_run
from grpc_user.web_ui import install_logs_tab

logger = logging.getLogger(__name__)
summary_logger = logging.getLogger("locust.stats_logger")

SHARES_OPTION = "grpc_request_shares"
TOTAL_USERS_OPTION = "grpc_total_users"
BUDGET_SPENT = "grpc_user_budget_spent"


def exit_on_bad_option(error: OptionError) -> None:
    """One line naming the option, the value and what is accepted; exit 2."""
    sys.stderr.write(f"locust: error: {error}\n")
    sys.exit(2)


def target_problem(environment: Any, run: SuiteRun) -> str:
    """Why the target cannot be load-tested ('' when it answers as a LogService)."""
    try:
        run_target(environment)
    except ValueError as error:
        return f"--host: {error}"
    result = preflight(environment, run)
    return "" if result.serving else f"target {result.target} is not serving the log service: {result.detail}"


def exit_unless_target_serves(environment: Any, run: SuiteRun) -> None:
    """Headless preflight before any user spawns: one line naming the target and the cause; exit 2
    for a malformed --host, 1 for a target that does not answer as a LogService."""
    problem = target_problem(environment, run)
    if problem:
        sys.stderr.write(f"locust: error: {problem}\n")
        sys.exit(2 if problem.startswith("--host") else 1)


@events.init_command_line_parser.add_listener
def _add_options(parser: Any, **_: Any) -> None:
    register_options(parser)


@events.init.add_listener
def on_init(environment: Any, runner: Any, web_ui: Any = None, **_: Any) -> None:
    """Validate the options, choose the run id (master or local), install the web UI tab."""
    run = suite_run(environment)
    try:
        run.settings = settings_from_options(environment.parsed_options)
    except OptionError as error:
        exit_on_bad_option(error)
    if not isinstance(runner, WorkerRunner):
        if not run.settings.run_id:
            run_id = new_run_id()
            run.settings = dataclasses.replace(run.settings, run_id=run_id)
            if environment.parsed_options is not None:
                environment.parsed_options.run_id = run_id
        logger.info("run id %s: every log carries metadata run_id=%s", run.settings.run_id, run.settings.run_id)
        if getattr(environment.parsed_options, "headless", False):
            exit_unless_target_serves(environment, run)
    if isinstance(runner, MasterRunner):
        runner.register_message(BUDGET_SPENT, lambda msg, **_: _worker_spent(environment, msg.node_id))
    if web_ui is not None:
        install_logs_tab(environment, web_ui)


@events.test_start.add_listener
def on_test_start(environment: Any, **_: Any) -> None:
    """Re-read options (the web UI may have changed them), reset counts, set the budget, open files."""
    run = suite_run(environment)
    runner = environment.runner
    try:
        run.settings = settings_from_options(environment.parsed_options)
    except OptionError as error:
        logger.error("%s", error)
        gevent.spawn(_finish, environment)
        return
    if isinstance(runner, MasterRunner) and environment.parsed_options is not None:
        setattr(environment.parsed_options, TOTAL_USERS_OPTION, runner.target_user_count)
    if not isinstance(runner, WorkerRunner) and not getattr(environment.parsed_options, "headless", True):
        problem = target_problem(environment, run)
        if problem:
            logger.error("%s", problem)
            environment.events.request.fire(request_type="grpc", name="preflight", response_time=0,
                                            response_length=0, exception=Exception(problem))  # fmt: skip
            gevent.spawn(_finish, environment)
            return
    run.counter.start_run()
    run.latency.reset()
    run.started_at = time.time()
    run.stopped_at = 0.0
    run.audit = None
    _start_budget(environment, run)
    if not isinstance(runner, WorkerRunner) and _csv_prefix(environment):
        run.history = LogsHistoryWriter(_csv_prefix(environment))
        run.history.start()
        run.history_greenlet = gevent.spawn(_write_history, environment, run)
        write_run_info(_csv_prefix(environment), run_info(environment, run))


@events.test_stop.add_listener
def on_test_stop(environment: Any, **_: Any) -> None:
    """Stop the history writer; in the web UI, write the run files and audit now.

    Headless runs finish at ``quitting`` instead: on Locust's quit path the master fires
    test_stop before the workers' final reports have arrived.
    """
    run = suite_run(environment)
    if isinstance(environment.runner, WorkerRunner):
        return
    run.stopped_at = time.time()
    if run.history_greenlet is not None:
        run.history_greenlet.kill(block=False)
    if not getattr(environment.parsed_options, "headless", False):
        write_run_files(environment, run)
        gevent.spawn(finish_audit, environment, run)


def write_run_files(environment: Any, run: SuiteRun) -> None:
    """The final history row, the logs totals and the run parameters."""
    prefix = _csv_prefix(environment)
    if not prefix or run.history is None:
        return
    run.history.append(run.counter, environment.runner.user_count)
    run.history.close()
    run.history = None
    write_logs_totals(prefix, run.counter)
    write_latency_split(prefix, run.latency)
    write_run_info(prefix, run_info(environment, run, stopped_at=run.stopped_at or time.time()))


@events.report_to_master.add_listener
def on_report_to_master(client_id: str, data: dict[str, Any], **_: Any) -> None:
    """Workers add their log counts to every stats report."""
    for run in all_runs():
        data[REPORT_KEY] = run.counter.take_report()
        data[LATENCY_REPORT_KEY] = run.latency.take_report()


@events.worker_report.add_listener
def on_worker_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
    """The master adds each worker's log counts to its own."""
    for run in all_runs():
        run.counter.merge_report(data.get(REPORT_KEY) or {})
        run.latency.merge_report(data.get(LATENCY_REPORT_KEY) or [])


@events.reset_stats.add_listener
def on_reset_stats(**_: Any) -> None:
    """Reset Stats in the web UI resets the per-RPC log counts too (not the audit's totals)."""
    for run in all_runs():
        run.counter.reset_stats()
        run.latency.reset()


@events.quitting.add_listener
def on_quitting(environment: Any, **_: Any) -> None:
    """End of a headless run: the delivery audit, the logs summary, then Locust's final CSV rows."""
    run = suite_run(environment)
    if isinstance(environment.runner, WorkerRunner):
        return
    if getattr(environment.parsed_options, "headless", False) and run.started_at:
        write_run_files(environment, run)
        if run.audit is None:
            finish_audit(environment, run)
    print_logs_summary(run)
    if _csv_prefix(environment):
        # Locust rewrites its --csv files once per interval and not after the stop: let it write
        # once more, so the files it closes hold the final figures, not those of a second earlier.
        gevent.sleep(CSV_STATS_INTERVAL_SEC + 0.2)


def print_logs_summary(run: SuiteRun) -> None:
    """Logs sent and acknowledged per RPC and the audit line, next to Locust's request table."""
    if run.counter.by_name:
        duration = max(time.time() - run.started_at, 1e-9)
        summary_logger.info("Logs per RPC (run id %s):", run.settings.run_id)
        header = ("Name", "# reqs", "logs sent", "logs acked", "rejected", "acked/s")
        summary_logger.info("%-20s %10s %12s %12s %12s %12s", *header)
        for name, logs in sorted(run.counter.by_name.items()) + [("Aggregated", run.counter.total())]:
            row = (name, logs.requests, logs.sent, logs.acked, logs.rejected, logs.acked / duration)
            summary_logger.info("%-20s %10d %12d %12d %12d %12.1f", *row)
    failed_rows = [row for row in run.latency.rows() if row[1] != "OK"]
    if failed_rows:
        summary_logger.info("Latency by outcome (ms), failed calls apart from successful ones:")
        summary_logger.info("%-20s %-20s %8s %8s %8s %8s %8s", "Name", "Outcome", "# calls", "avg", "50%", "95%", "max")
        for name, outcome, count, average, p50, _p90, p95, _p99, most in run.latency.rows():
            summary_logger.info("%-20s %-20s %8d %8.1f %8d %8d %8d", name, outcome, count, average, p50, p95, most)
    if run.audit is not None:
        summary_logger.info("%s", AuditResult(**run.audit).summary())


def finish_audit(environment: Any, run: SuiteRun) -> None:
    """Run the delivery audit, record it in the run files, and fail the process on lost logs."""
    result = delivery_audit(environment, run)
    run.audit = result.as_dict()
    prefix = _csv_prefix(environment)
    if prefix:
        write_audit(prefix, result)
        write_run_info(prefix, run_info(environment, run, stopped_at=run.stopped_at or time.time()))
    if result.status in ("lost", "unsettled") and not run.settings.audit_allow_loss:
        what = "were lost" if result.status == "lost" else "were not stored yet when the audit gave up"
        logger.error("%d acknowledged logs %s (exit code %d; --audit-allow-loss accepts it)",
                     result.lost, what, AUDIT_EXIT_CODE)  # fmt: skip
        environment.process_exit_code = AUDIT_EXIT_CODE
    elif result.status == "error":
        logger.error("Delivery audit failed: %s", result.detail)


def run_info(environment: Any, run: SuiteRun, stopped_at: float | None = None) -> dict[str, Any]:
    """Run parameters for ``<prefix>_run.json`` (no secrets)."""
    options = environment.parsed_options
    locustfile = getattr(options, "locustfile", "") or ""
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
        "workers": environment.runner.worker_count if isinstance(environment.runner, MasterRunner) else 0,
        "options": run.settings.public(),
    }
    if run.audit is not None:
        info["audit"] = run.audit
    return info


def _iso(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


def _csv_prefix(environment: Any) -> str:
    return getattr(environment.parsed_options, "csv_prefix", None) or ""


def _write_history(environment: Any, run: SuiteRun) -> None:
    while run.history is not None:
        gevent.sleep(CSV_STATS_INTERVAL_SEC)
        if run.history is not None:
            run.history.append(run.counter, environment.runner.user_count)


def _start_budget(environment: Any, run: SuiteRun) -> None:
    runner, total = environment.runner, run.settings.max_requests
    if not total:
        run.budget.limit(None, lambda: None)
    elif isinstance(runner, MasterRunner):
        workers = [node.id for node in runner.clients.ready + runner.clients.running + runner.clients.spawning]
        shares = split_total(total, workers)
        setattr(environment.parsed_options, SHARES_OPTION, shares)
        run.workers_spending = set(shares)
        logger.info("--max-requests %d split over %d workers: %s", total, len(shares), sorted(shares.values()))
    elif isinstance(runner, WorkerRunner):
        share = (getattr(environment.parsed_options, SHARES_OPTION, None) or {}).get(runner.client_id, 0)
        run.budget.limit(share, lambda: runner.send_message(BUDGET_SPENT))
    else:
        run.budget.limit(total, lambda: gevent.spawn(_finish, environment))


def _worker_spent(environment: Any, worker_id: str) -> None:
    run = suite_run(environment)
    run.workers_spending.discard(worker_id)
    if not run.workers_spending:
        logger.info("--max-requests reached on every worker")
        gevent.spawn(_finish, environment)


def _finish(environment: Any) -> None:
    """End the test: quit in headless mode, stop (keeping the web UI) otherwise."""
    if getattr(environment.parsed_options, "headless", True):
        environment.runner.quit()
    else:
        environment.runner.stop()
