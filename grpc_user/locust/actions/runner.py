"""Run a test's actions at their times on the master (or the single process), open their phases, tell the workers.

Each action runs in its own greenlet, started AT seconds after the test starts, so a slow or hanging
command never delays the next one (``--action-timeout`` bounds it). Actions start in phase order, those due at the
same moment too: each waits for the one before it to start. Starting an action opens its
phase at once on the master; the workers hear of it in a message (``PHASE_MESSAGE``), so a worker's
call sent within that message's latency of the start still counts in the phase before.
``<prefix>_actions.csv`` is rewritten whenever an action starts or ends.
"""

from __future__ import annotations

import logging
import sys
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gevent
from gevent.event import Event
from locust.runners import MasterRunner, WorkerRunner
from locust.util.timespan import parse_timespan

from grpc_user.locust.actions.command import ActionOutcome, run_action
from grpc_user.locust.run.state import SuiteRun, suite_run
from grpc_user.locust.settings.action_plan import Action
from grpc_user.run_files import write_actions as write_actions_file

logger = logging.getLogger(__name__)
PHASE_MESSAGE = "grpc_user_phase"


@dataclass
class RunningActions:
    """A test's actions as they run on the master or single process: what became of each (``outcomes``, in phase
    order) and the greenlet that runs each (both empty on a worker and before the first test)."""

    outcomes: list[ActionOutcome] = field(default_factory=list)
    greenlets: list[Any] = field(default_factory=list)


_running: weakref.WeakKeyDictionary[Any, RunningActions] = weakref.WeakKeyDictionary()


def running_actions(environment: Any) -> RunningActions:
    """The actions of the Environment's current (or last) test."""
    actions = _running.get(environment)
    if actions is None:
        actions = _running[environment] = RunningActions()
    return actions


def register(events: Any) -> None:
    """Wire the actions into Locust's events: at init, a worker says it runs none and opens the phases the master
    tells it of (the actions start and end with a test, from ``lifecycle``)."""

    def on_init(environment: Any, runner: Any, **_: Any) -> None:
        if isinstance(runner, WorkerRunner):
            warn_of_worker_actions(environment.parsed_options)
            register_worker_messages(environment)

    events.init.add_listener(on_init)


def warn_of_worker_actions(options: Any) -> None:
    """One line when ``--action`` was given to a worker started as one (``--worker``): it runs no action. The
    workers that ``--processes`` forks from a master inherit the master's options, and say nothing."""
    forked_by_master = bool(getattr(options, "processes", None)) and "--worker" not in sys.argv[1:]
    if getattr(options, "action", None) and not forked_by_master:
        logger.warning(
            "--action is ignored by a worker: actions run on the master (give them to the master or the "
            "single process; its workers tag their logs with the phases it opens)"
        )


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
    actions = _running[environment] = RunningActions(
        [ActionOutcome(a.phase, a.at, a.command) for a in run.settings.actions.actions]
    )
    if isinstance(environment.runner, WorkerRunner) or not actions.outcomes:
        return
    previous: Event | None = None
    for action, outcome in zip(run.settings.actions.actions, actions.outcomes, strict=True):
        started = Event()
        greenlet = gevent.spawn(_run_at_its_time, environment, run, action, outcome, actions.outcomes, csv_prefix,
                                stop_test, previous, started)  # fmt: skip
        actions.greenlets.append(greenlet)
        previous = started
    logger.info("%d action(s): %s", len(actions.outcomes),
                "; ".join(action.label() for action in run.settings.actions.actions))  # fmt: skip
    _warn_of_actions_after_the_end(environment, run.settings.actions.actions)
    write_actions(csv_prefix, actions.outcomes)


def _warn_of_actions_after_the_end(environment: Any, actions: tuple[Action, ...]) -> None:
    """One line when -t (``run_time``: seconds, or a timespan set by the web UI) ends the test before some action
    falls due; the test goes on, those actions end as not_started."""
    run_time = getattr(environment.parsed_options, "run_time", None)
    if isinstance(run_time, str):
        try:
            run_time = parse_timespan(run_time)
        except ValueError:  # none given, or a form's value Locust refuses itself
            run_time = None
    late = [action for action in actions if run_time and action.at >= run_time]
    if late:
        logger.warning("-t %gs ends the test before %d action(s) fall due, which will not run: %s", run_time,
                       len(late), "; ".join(action.label() for action in late))  # fmt: skip


def _run_at_its_time(environment: Any, run: SuiteRun, action: Action, outcome: ActionOutcome,
                     outcomes: list[ActionOutcome], csv_prefix: str, stop_test: Callable[[Any], None],
                     previous: Event | None, started: Event) -> None:  # fmt: skip
    """At the action's time, once the action before it (``previous``) has started: open its phase, run it."""
    try:
        delay = run.started_at + action.at - time.time()
        if delay > 0:
            gevent.sleep(delay)
        if previous is not None:
            previous.wait()
        if outcome.status != "pending":  # the test began to stop as this woke up: end_actions has marked it
            return
        run.phases.current = max(run.phases.current, action.phase)
        if isinstance(environment.runner, MasterRunner):
            environment.runner.send_message(PHASE_MESSAGE, {"run_id": run.settings.run_id, "phase": action.phase})
        logger.info("action %d %s: starting (phase %d)", action.phase, action.label(), action.phase)
    finally:
        started.set()
    try:
        run_action(outcome, run.settings.actions.timeout)
    finally:
        write_actions(csv_prefix, outcomes)
        _log(outcome)
    if outcome.status in ("failed", "timed_out") and run.settings.actions.stop_on_failure:
        logger.error("--action-failure stop: action %d failed, stopping the test", action.phase)
        stop_test(environment)


def _log(outcome: ActionOutcome) -> None:
    level = logging.INFO if outcome.status in ("ok", "running") else logging.ERROR
    written = f"{outcome.output_lines:,} lines, {outcome.output_bytes:,} bytes"
    output = f"; output ({written}): {' | '.join(outcome.output)}" if outcome.output else ""
    logger.log(level, "%s%s", outcome.sentence(), output)


def end_actions(environment: Any, csv_prefix: str, kill_running: bool) -> None:
    """As soon as the test begins to stop (``test_stopping``: -t, STOP, Ctrl-C, SIGTERM, a failed action) and again
    at its end: actions not started yet never will (not_started); with ``kill_running`` (the process quits) the
    ones still running are ended too. The file is rewritten."""
    actions = running_actions(environment)
    for greenlet, outcome in zip(actions.greenlets, actions.outcomes, strict=True):
        if outcome.status == "pending":
            greenlet.kill(block=False)
            outcome.status = "not_started"
        elif outcome.status == "running" and kill_running:
            greenlet.kill(block=True)
    write_actions(csv_prefix, actions.outcomes)


def write_actions(csv_prefix: str, outcomes: list[ActionOutcome]) -> str:
    """Write ``<prefix>_actions.csv`` (nothing without a prefix or actions); return its path."""
    if not csv_prefix or not outcomes:
        return ""
    return write_actions_file(csv_prefix, outcomes)
