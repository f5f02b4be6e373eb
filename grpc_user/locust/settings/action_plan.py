"""The actions of a run, parsed from ``--action AT:COMMAND`` (Locust timespans), ``--action-failure`` and
``--action-timeout``. Fixed when Locust starts: they run shell commands, so the web UI may never set them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grpc_user.locust.settings.rates import parse_seconds
from grpc_user.locust.settings.table import option
from grpc_user.locust.settings.values import Refused, number, one_of

ACTIONS = "Actions (command line or environment only: they run shell commands)"
FAILURE_POLICIES = ("continue", "stop")
# An action killed after more than a day is a typo, and gevent's timers overflow long before infinity.
MAX_ACTION_SECONDS = 86400.0
ACCEPTED = "AT:COMMAND with AT a Locust timespan after the test starts (30, 30s, 2m, 1h30m) and a shell command"


@dataclass(frozen=True)
class Action:
    """One command: ``at`` seconds after the test starts; ``phase`` is the phase it opens (1 for the first)."""

    phase: int
    at: float
    command: str

    def label(self) -> str:
        """``"COMMAND" at 30 s`` (the command shortened to 80 characters)."""
        command = self.command if len(self.command) <= 80 else self.command[:79] + "…"
        return f'"{command}" at {self.at:g} s'


def parse_action(raw: Any) -> tuple[float, str]:
    """``30s:kubectl rollout restart deployment/log-service`` -> (30.0, the command)."""
    at, sep, command = str(raw).partition(":")
    if not sep or not command.strip():
        raise Refused(ACCEPTED, shown=raw)
    try:
        return parse_seconds(at), command.strip()
    except ValueError:
        raise Refused(ACCEPTED, shown=raw) from None


def parse_actions(raw: Any) -> tuple[Action, ...]:
    """``--action`` values (one or a list) -> Actions sorted by time, numbered from phase 1."""
    items = [raw] if isinstance(raw, str) else list(raw or ())
    timed = sorted((parse_action(item) for item in items), key=lambda pair: pair[0])
    return tuple(Action(phase, at, command) for phase, (at, command) in enumerate(timed, start=1))


def stops_on_failure(raw: Any) -> bool:
    """``--action-failure``: ``stop`` -> True, ``continue`` -> False."""
    return one_of(FAILURE_POLICIES, " or ".join(FAILURE_POLICIES))(raw) == "stop"


@dataclass(frozen=True)
class ActionPlan:
    """Every action in start order, what a failing one does, how long one may run. Fixed when Locust starts."""

    actions: tuple[Action, ...] = option(
        "--action",
        parse=parse_actions,
        default=(),
        help=(
            "AT:COMMAND: run COMMAND with the shell AT (a Locust timespan: 30s, 2m) "
            "after the test starts, on the master; every log carries the phase it was sent in and the audit reports "
            "each phase (repeatable)"
        ),
        group=ACTIONS,
        kind="repeat",
        web_ui=False,
        shown_default="none",
        metavar="AT:COMMAND",
    )
    stop_on_failure: bool = option(
        "--action-failure",
        parse=stops_on_failure,
        default="continue",
        help="what a failing action does: continue (reported) or stop (ends the test, exit 1)",
        group=ACTIONS,
        web_ui=False,
        metavar="continue|stop",
    )
    timeout: float = option(
        "--action-timeout",
        parse=number("seconds", most=MAX_ACTION_SECONDS),
        default="300",
        help="seconds an action may run before it is killed with its children (reported; the test goes on)",
        group=ACTIONS,
        web_ui=False,
        metavar="S",
    )

    def public(self) -> dict[str, object]:
        """JSON-ready, for ``_run.json`` and the web UI."""
        return {
            "actions": [{"phase": a.phase, "at": a.at, "command": a.command} for a in self.actions],
            "action_failure": "stop" if self.stop_on_failure else "continue",
            "action_timeout": self.timeout,
        }
