"""A test's life in Locust's events: at init the options are checked and the features wired (worker messages, the
web UI, stop signals); at each start the run id, the counts, the budget and the features' starts; at the stop and
when quitting, the one way a test ends (``lifecycle.end``).

Registered by the plugin's root (``grpc_user.locust``), so every locustfile with a GrpcUser gets them. Only the
master (or the single local process) writes files and audits; workers report their counts to it
(``lifecycle.stats_reports``).
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from typing import Any

import gevent
from locust.runners import STATE_RUNNING, STATE_SPAWNING, MasterRunner, WorkerRunner
from locust.stats import CSV_STATS_INTERVAL_SEC

from grpc_user.locust.actions import runner as actions
from grpc_user.locust.capacity import search
from grpc_user.locust.freshness.lifecycle import start_probe
from grpc_user.locust.lifecycle import task_errors
from grpc_user.locust.lifecycle.distributed import (
    FINAL_COUNTS_MARGIN_SECONDS,
    register_master_messages,
    register_worker_messages,
    send_final_counts,
    start_master_budget,
    start_worker_budget,
)
from grpc_user.locust.lifecycle.end import (
    append_history,
    end_test,
    fail_on_dropped_arrivals,
    print_logs_summary,
    run_info,
)
from grpc_user.locust.lifecycle.garbage import tune_garbage_collection
from grpc_user.locust.lifecycle.master_watch import watch_master
from grpc_user.locust.lifecycle.recording import listen_to_calls
from grpc_user.locust.lifecycle.stop_once import (
    begin_test_stop,
    end_test_stop,
    start_test,
    test_stop_pending,
    wait_for_users,
)
from grpc_user.locust.lifecycle.stop_signals import (
    enter_shutdown,
    ignore_sigint_from_now,
    install_stop_signals,
    reset_audit_interrupt,
)
from grpc_user.locust.open_model.clock import ArrivalClock, LiveRate
from grpc_user.locust.preflight import target_problem, unused_run_id, wait_for_preflight
from grpc_user.locust.run.csv_files import csv_prefix, remove_csv_files_of_no_test
from grpc_user.locust.run.csv_writer_passes import count_csv_writer_passes, write_final_figures
from grpc_user.locust.run.exit_codes import BAD_OPTION, FAILED
from grpc_user.locust.run.known_end import run_time_seconds, set_test_end
from grpc_user.locust.run.state import SuiteRun, suite_run
from grpc_user.locust.run.user_total import send_user_total_with_every_spawn, total_users
from grpc_user.locust.settings.checks import settings_for_test
from grpc_user.locust.settings.spawn_defaults import read_default_options_once
from grpc_user.locust.settings.suite import SuiteSettings, choose_run_id, parse_actions, parse_security
from grpc_user.locust.settings.values import OptionError
from grpc_user.run_files import ArrivalsHistory, CountsHistory, write_run_info

logger = logging.getLogger(__name__)
STOP_POLL_SECONDS = 0.05
# How long a worker's first test_start waits for Locust's init event (it follows the runner's creation at once).
INIT_WAIT_SECONDS = 30.0

# The run id the master chose for this test; it reaches the workers with Locust's spawn messages.
TEST_RUN_ID_OPTION = "grpc_test_run_id"


def exit_before_any_test(environment: Any, line: str, code: int) -> None:
    """Quit before a test ever started: one line, the exit code, and none of the --csv files Locust opened already
    (``remove_csv_files_of_no_test``)."""
    remove_csv_files_of_no_test(environment)
    sys.stderr.write(f"locust: error: {line}\n")
    if isinstance(environment.runner, MasterRunner):  # workers that connected meanwhile would run on until
        environment.runner.quit()  # their heartbeat timeout: Locust's quit tells each to quit
    sys.exit(code)


def test_settings(environment: Any) -> SuiteSettings:
    """The options of the test about to start, validated the one way (``settings_for_test``); OptionError."""
    run = suite_run(environment)
    return settings_for_test(environment.parsed_options, environment.host, run.startup_security,
                             environment.user_classes or [], run.startup_actions)  # fmt: skip


def exit_unless_target_serves(environment: Any, run: SuiteRun) -> None:
    """Preflight of an unattended run (headless, --autostart) before any user spawns and before the -t timer
    starts: one line naming the target and the cause; exit 2 for a malformed --host, 1 for a target that does not
    answer as a LogService or a preflight a stop signal cut short (no files either way)."""
    problem = target_problem(run, environment.host, run.settings)
    if problem:
        exit_before_any_test(environment, problem, BAD_OPTION if problem.startswith("--host") else FAILED)


def is_worker(environment: Any) -> bool:
    """A worker process, even before its runner exists (``--worker``, or a ``--processes`` child)."""
    return isinstance(environment.runner, WorkerRunner) or bool(getattr(environment.parsed_options, "worker", False))


def wait_for_init(environment: Any, run: SuiteRun) -> None:
    """Locust hands a worker that joins a running test (a late, restarted or rebalanced-to worker) its spawn
    message while the worker is still connecting: ``test_start`` then fires before the runner exists and before
    ``init``. Wait for both, so the worker takes the master's run id and options and decides nothing itself."""
    deadline = time.monotonic() + INIT_WAIT_SECONDS
    while not run.initialized and time.monotonic() < deadline:
        gevent.sleep(STOP_POLL_SECONDS)
    if not run.initialized:
        logger.error("Locust's init event did not come within %g s of the test's start on this worker",
                     INIT_WAIT_SECONDS)  # fmt: skip


def on_init(environment: Any, runner: Any, **_: Any) -> None:
    """Validate the options (quit with one line on a bad one), fix the security settings, run the preflight of an
    unattended run, wire the master's and workers' messages. The features wire their own next (``register``)."""
    tune_garbage_collection()
    task_errors.install()
    run = suite_run(environment)
    try:
        run.startup_security = parse_security(environment.parsed_options) if environment.parsed_options else None
        # A worker runs no action: it tags phases if the master's options (sent with each spawn) name actions.
        if environment.parsed_options and not isinstance(runner, WorkerRunner):
            run.startup_actions = parse_actions(environment.parsed_options)
        run.settings = test_settings(environment)
    except OptionError as error:
        exit_before_any_test(environment, str(error), BAD_OPTION)
    run.startup_host = environment.host or ""
    install_stop_signals(environment)
    count_csv_writer_passes(environment)
    # Registered now, after Locust's own: ``quitting`` runs listeners in reverse, so these run first.
    environment.events.quitting.add_listener(on_quitting)
    if isinstance(runner, WorkerRunner):
        register_worker_messages(environment)
        watch_master(environment, run)
        run.initialized = True
        return
    options = environment.parsed_options
    if getattr(options, "headless", False) or getattr(options, "autostart", False):  # unattended: before any timer
        exit_unless_target_serves(environment, run)
    if isinstance(runner, MasterRunner):
        register_master_messages(environment, lambda: gevent.spawn(_finish, environment))
        send_user_total_with_every_spawn(environment, runner)
    run.initialized = True


def on_test_start(environment: Any, **_: Any) -> None:
    """Re-read options (the web UI may have changed them), choose the run id, reset counts, set the budget."""
    run = suite_run(environment)
    if not run.initialized and is_worker(environment):
        wait_for_init(environment, run)
    runner = environment.runner
    if run.quitting_greenlet is not None:  # e.g. a worker whose own Ctrl-C came first, given its master's rebalancing
        logger.info("a test asked to start while this process shuts down: its users make no call")
        return
    run.started_at = 0.0
    try:
        settings = test_settings(environment)
    except OptionError as error:
        logger.error("%s", error)
        _refuse_test(environment, run)
        return
    run.settings = dataclasses.replace(settings, run_id=_test_run_id(environment, run, settings.run_id))
    run.workers = runner.worker_count if isinstance(runner, MasterRunner) else 0
    if not isinstance(runner, WorkerRunner):
        # The target's preflight ran before: at init for an unattended run, in the web UI's /swarm otherwise.
        if settings.run_id and settings.audit:
            _claim_unused_run_id(environment, run, settings.run_id)
        logger.info("run id %s: every log of this test carries metadata run_id=%s", run.settings.run_id,
                    run.settings.run_id)  # fmt: skip
    run.counter.start_run()
    run.peers.start_run()
    run.latency.reset()
    run.service_time.reset()
    run.arrival_counts.start_run()
    run.started_at, run.stopping_at, run.stopped_at = time.time(), 0.0, 0.0
    swarm, run.swarm_run_time = run.swarm_run_time, None
    if not isinstance(runner, WorkerRunner):  # a /swarm's form sets the run time it starts, else -t does
        run_time = (
            swarm[0] if swarm is not None else run_time_seconds(getattr(environment.parsed_options, "run_time", None))
        )
        set_test_end(environment, run_time, run.started_at)
    run.arrivals = _arrival_clock(environment, run)
    if run.settings.capacity is not None and not isinstance(runner, WorkerRunner):
        run.capacity_greenlet = gevent.spawn(search.search_capacity, environment, run, _finish)
    run.audit, run.final_counts_from, run.workers_without_final_counts = None, set(), []
    start_test(run)
    reset_audit_interrupt(run)
    _start_budget(environment, run)
    prefix = csv_prefix(environment)
    actions.start_actions(environment, run, prefix, _stop_for_failed_action)
    start_probe(environment, run, prefix, lambda: total_users(environment))
    listen_to_calls(environment, run)
    if not isinstance(runner, WorkerRunner) and prefix:
        run.history = CountsHistory(prefix)
        open_model = run.settings.arrival_rate is not None or run.settings.capacity is not None
        run.arrivals_history = ArrivalsHistory(prefix) if open_model else None
        run.history_greenlet = gevent.spawn(_write_history, environment, run)
        write_run_info(prefix, run_info(environment, run))


def _stop_for_failed_action(environment: Any) -> None:
    """``--action-failure stop``: the test ends, exit code 1 (the audit's 3 or 4 still wins)."""
    environment.process_exit_code = FAILED
    _finish(environment)


def _arrival_clock(environment: Any, run: SuiteRun) -> ArrivalClock | None:
    """This process's share of ``--arrival-rate``: in proportion to the users it runs of all the test's users."""
    if run.settings.arrival_rate is None and run.settings.capacity is None:
        return None
    runner = environment.runner
    run.live_rate = LiveRate(run.settings.capacity.start) if run.settings.capacity else None
    if isinstance(runner, MasterRunner):
        return None
    schedule = run.live_rate or run.settings.arrival_rate
    assert schedule is not None  # --arrival-rate or --capacity-search's live rate, checked above
    logger.info("arrival rate %s calls/s in total (open model): at most -u calls in flight; latency counts from "
                "each call's scheduled start", schedule)  # fmt: skip
    return ArrivalClock(schedule, lambda: min(runner.user_count / total_users(environment), 1.0), run.started_at,
                        run.arrival_counts, lambda: runner.user_count, lambda: run.budget.used_up)  # fmt: skip


def _refuse_test(environment: Any, run: SuiteRun) -> None:
    """A test that must not run: no user may make a call, and the test stops."""
    run.budget.limit(0, lambda: None)
    gevent.spawn(_finish, environment)


def _test_run_id(environment: Any, run: SuiteRun, typed: str) -> str:
    """The master (or single process) chooses; a worker takes the master's choice."""
    options = environment.parsed_options
    if isinstance(environment.runner, WorkerRunner):
        return str(getattr(options, TEST_RUN_ID_OPTION, "") or typed)
    run_id = choose_run_id(typed, run.used_run_ids)
    run.used_run_ids.add(run_id)
    if options is not None:
        setattr(options, TEST_RUN_ID_OPTION, run_id)
    return run_id


def _claim_unused_run_id(environment: Any, run: SuiteRun, typed: str) -> None:
    """A run id the user typed (``--run-id``, the form) that the service already stores logs of (an earlier run, a
    test of another process) would make the audit count them as this test's: number it on as the web UI numbers a
    reused one, and say so (``preflight.unused_run_id``)."""
    run_id, line = unused_run_id(environment, run, typed, run.used_run_ids)
    if line:
        logger.warning("%s", line)
    if run_id != run.settings.run_id:
        run.used_run_ids.add(run_id)
        run.settings = dataclasses.replace(run.settings, run_id=run_id)
        if environment.parsed_options is not None:
            setattr(environment.parsed_options, TEST_RUN_ID_OPTION, run_id)


def on_test_stopping(environment: Any, **_: Any) -> None:
    """Users are about to stop: no more starts are offered, and no action starts any more."""
    run = suite_run(environment)
    run.stopping_at = time.time()
    if run.arrivals is not None:
        run.arrivals.stop()
    if not isinstance(environment.runner, WorkerRunner) and run.started_at:
        actions.end_actions(environment, csv_prefix(environment), kill_running=False)


def on_test_stop(environment: Any, **_: Any) -> None:
    """Users have stopped (once their calls in flight end): a worker sends its final counts; the master or single
    process ends the test. Once per test, however many stops Locust ran (``stop_once``)."""
    run = suite_run(environment)
    if not run.started_at or not begin_test_stop(run):
        return
    try:
        wait_for_users(environment.runner, run)
        _end_stopped_test(environment, run)
    finally:
        end_test_stop(run)


def _end_stopped_test(environment: Any, run: SuiteRun) -> None:
    if run.capacity_greenlet is not None and not run.capacity_greenlet.dead \
            and run.capacity_greenlet is not gevent.getcurrent():  # fmt: skip
        run.capacity_greenlet.kill(block=False)
        logger.error(
            "capacity search: the test stopped (-t, STOP or a signal) before the search found the knee: no "
            "answer and no capacity.json (exit code 1); leave -t out, the search ends the test by itself"
        )
        environment.process_exit_code = FAILED
    if isinstance(environment.runner, WorkerRunner):
        if not run.master_lost:  # else no master takes them
            send_final_counts(environment)
    else:
        end_test(environment, run)


def finish_stop_under_way(run: SuiteRun) -> None:
    """A stop began elsewhere (the master's, on a worker): let it end, so that calls in flight are counted and a
    worker's final counts sent, before Locust quits and kills the greenlet doing it. Its end is the test's
    ``test_stop`` handled, not the runner's state: Locust marks a runner stopped before it fires ``test_stop``, and
    a master whose last worker quit stays ``stopping`` (no worker is left to report it stopped: 40 s waited)."""
    deadline = time.monotonic() + 2 * (run.settings.grpc_timeout + FINAL_COUNTS_MARGIN_SECONDS)
    while test_stop_pending(run) and time.monotonic() < deadline:
        gevent.sleep(STOP_POLL_SECONDS)


def on_quitting(environment: Any, **_: Any) -> None:
    """Ctrl-C, SIGTERM or the end of a headless run: stop users still running, wait for the audit, print the logs."""
    run = suite_run(environment)
    if not enter_shutdown(environment, run):
        return
    run.budget.close()  # users stop taking work, and a test started from now on makes no call
    wait_for_preflight(run)
    runner = environment.runner
    task_errors.report()
    if runner is not None and runner.state in (STATE_RUNNING, STATE_SPAWNING) and not run.started_at:
        runner.stop()  # a test its preflight refused: no call was made
    elif runner is not None and runner.state in (STATE_RUNNING, STATE_SPAWNING):
        logger.info("Stopping users first: calls in flight finish (within --grpc-timeout %g s) and are counted "
                    "before the audit", run.settings.grpc_timeout)  # fmt: skip
        runner.stop()
    elif runner is not None and test_stop_pending(run):
        finish_stop_under_way(run)
    if isinstance(runner, WorkerRunner) or not run.started_at:
        return
    if run.audit_greenlet is not None:
        run.audit_greenlet.join()
    actions.end_actions(environment, csv_prefix(environment), kill_running=True)
    print_logs_summary(environment, run)
    fail_on_dropped_arrivals(environment, run)
    if csv_prefix(environment):
        # Locust rewrites its --csv files once per interval and not after the stop: write them once more now, so
        # the files it closes hold the final figures, not those of a second earlier.
        write_final_figures(environment)
    ignore_sigint_from_now()


def _write_history(environment: Any, run: SuiteRun) -> None:
    while run.history is not None:
        gevent.sleep(CSV_STATS_INTERVAL_SEC)
        if run.history is not None:
            run.peers.poll()  # a master's own channels make no load calls: its workers report theirs
            append_history(environment, run)


def _start_budget(environment: Any, run: SuiteRun) -> None:
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        start_master_budget(run)
    elif isinstance(runner, WorkerRunner):
        start_worker_budget(environment, run)
    elif run.settings.max_requests:
        run.budget.limit(run.settings.max_requests, lambda: gevent.spawn(_finish, environment))
    else:
        run.budget.limit(None, lambda: None)


def _finish(environment: Any) -> None:
    """End the test: quit in headless mode, stop (keeping the web UI) otherwise."""
    if getattr(environment.parsed_options, "headless", True):
        environment.runner.quit()
    else:
        environment.runner.stop()


def register(events: Any) -> None:
    """Add a test's life to Locust's ``events`` (its init, start, stopping, stop; quitting is added at init);
    the plugin's root (``grpc_user.locust``) calls it once."""
    read_default_options_once()  # before any spawn message: a late worker gets one before its init event
    events.init.add_listener(on_init)
    events.test_start.add_listener(on_test_start)
    events.test_stopping.add_listener(on_test_stopping)
    events.test_stop.add_listener(on_test_stop)
