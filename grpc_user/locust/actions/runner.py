"""Run a test's actions at their times on the master (or the single process), open their phases, tell the workers.

Each action runs in its own greenlet, started AT seconds after the test starts, so a slow or hanging
command never delays the next one (``--action-timeout`` bounds it). Starting an action opens its
phase at once on the master; the workers hear of it in a message (``PHASE_MESSAGE``), so a worker's
call sent within that message's latency of the start still counts in the phase before.
``<prefix>_actions.csv`` is rewritten whenever an action starts or ends.
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Callable
from typing import Any

import gevent
from locust.runners import MasterRunner, WorkerRunner

from grpc_user.locust.actions.command import ActionOutcome, run_action
from grpc_user.locust.actions.plan import Action
from grpc_user.locust.lifecycle.state import SuiteRun, suite_run

logger = logging.getLogger(__name__)
PHASE_MESSAGE = "grpc_user_phase"
HEADER = ("Phase", "At (s)", "Command", "Status", "Exit Code", "Started (unix s)", "Ended (unix s)", "Duration (s)",
          "Output Lines", "Output", "Detail", "Output Bytes")  # fmt: skip


def register_worker_messages(environment: Any) -> None:
    """A worker opens the phases the master tells it of."""

    def phase(environment: Any, msg: Any, **_: Any) -> None:
        run, run_id, phase = suite_run(environment), msg.data.get("run_id"), int(msg.data["phase"])
        if run_id == run.settings.run_id:
            run.phases.current = max(run.phases.current, phase)
        else:  # the master's action came before this worker's test start (a slow spawn): keep it for that start
            earlier = run.phases.announced
            run.phases.announced = (str(run_id), max(phase, earlier[1]) if earlier and earlier[0] == run_id else phase)

    environment.runner.register_message(PHASE_MESSAGE, phase)


def start_actions(environment: Any, run: SuiteRun, csv_prefix: str, stop_test: Callable[[Any], None]) -> None:
    """At test start on the master or single process: one greenlet per action, waiting for its time."""
    run.phases.start_run(run.settings.run_id)
    run.action_outcomes = [ActionOutcome(a.phase, a.at, a.command) for a in run.settings.actions.actions]
    run.action_greenlets = []
    if isinstance(environment.runner, WorkerRunner) or not run.action_outcomes:
        return
    for action, outcome in zip(run.settings.actions.actions, run.action_outcomes, strict=True):
        greenlet = gevent.spawn(_run_at_its_time, environment, run, action, outcome, csv_prefix, stop_test)
        run.action_greenlets.append(greenlet)
    logger.info("%d action(s): %s", len(run.action_outcomes),
                "; ".join(action.label() for action in run.settings.actions.actions))  # fmt: skip
    write_actions(csv_prefix, run.action_outcomes)


def _run_at_its_time(environment: Any, run: SuiteRun, action: Action, outcome: ActionOutcome, csv_prefix: str,
                     stop_test: Callable[[Any], None]) -> None:  # fmt: skip
    delay = run.started_at + action.at - time.time()
    if delay > 0:
        gevent.sleep(delay)
    if outcome.status != "pending":  # the test began to stop as this woke up: end_actions has marked it
        return
    run.phases.current = max(run.phases.current, action.phase)
    if isinstance(environment.runner, MasterRunner):
        environment.runner.send_message(PHASE_MESSAGE, {"run_id": run.settings.run_id, "phase": action.phase})
    logger.info("action %d %s: starting (phase %d)", action.phase, action.label(), action.phase)
    try:
        run_action(outcome, run.settings.actions.timeout)
    finally:
        write_actions(csv_prefix, run.action_outcomes)
        _log(outcome)
    if outcome.status in ("failed", "timed_out") and run.settings.actions.stop_on_failure:
        logger.error("--action-failure stop: action %d failed, stopping the test", action.phase)
        stop_test(environment)


def _log(outcome: ActionOutcome) -> None:
    level = logging.INFO if outcome.status in ("ok", "running") else logging.ERROR
    written = f"{outcome.output_lines:,} lines, {outcome.output_bytes:,} bytes"
    output = f"; output ({written}): {' | '.join(outcome.output)}" if outcome.output else ""
    logger.log(level, "%s%s", outcome.sentence(), output)


def end_actions(run: SuiteRun, csv_prefix: str, kill_running: bool) -> None:
    """As soon as the test begins to stop (``test_stopping``: -t, STOP, Ctrl-C, SIGTERM, a failed action) and again
    at its end: actions not started yet never will (not_started); with ``kill_running`` (the process quits) the
    ones still running are ended too. The file is rewritten."""
    for greenlet, outcome in zip(run.action_greenlets, run.action_outcomes, strict=True):
        if outcome.status == "pending":
            greenlet.kill(block=False)
            outcome.status = "not_started"
        elif outcome.status == "running" and kill_running:
            greenlet.kill(block=True)
    write_actions(csv_prefix, run.action_outcomes)


def write_actions(csv_prefix: str, outcomes: list[ActionOutcome]) -> str:
    """Write ``<prefix>_actions.csv`` (nothing without a prefix or actions); return its path."""
    if not csv_prefix or not outcomes:
        return ""
    path = f"{csv_prefix}_actions.csv"
    stamp = lambda moment: "" if moment is None else f"{moment:.3f}"  # noqa: E731
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for o in outcomes:
            duration = "" if o.duration is None else f"{o.duration:.3f}"
            writer.writerow((o.phase, f"{o.at:g}", o.command, o.status, "" if o.exit_code is None else o.exit_code,
                             stamp(o.started_at), stamp(o.ended_at), duration, o.output_lines, " | ".join(o.output),
                             o.detail, o.output_bytes))  # fmt: skip
    return path
