"""The actions of a run, parsed from ``--action AT:COMMAND`` (Locust timespans), ``--action-failure`` and
``--action-timeout``. Fixed when Locust starts: they run shell commands, so the web UI may never set them."""

from __future__ import annotations

from dataclasses import dataclass

FAILURE_POLICIES = ("continue", "stop")
DEFAULT_TIMEOUT_SECONDS = 300.0
ACCEPTED = "AT:COMMAND with AT a Locust timespan after the test starts (30, 30s, 2m, 1h30m) and a shell command"


class ActionError(ValueError):
    """An action option with a value it does not accept: ``option``, the value, what is accepted."""

    def __init__(self, option: str, value: object, accepted: str) -> None:
        super().__init__(f"{option}={value!r} is not valid; accepted: {accepted}")
        self.option, self.value, self.accepted = option, value, accepted


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


@dataclass(frozen=True)
class ActionPlan:
    """Every action in start order, what a failing one does, how long one may run."""

    actions: tuple[Action, ...] = ()
    stop_on_failure: bool = False
    timeout: float = DEFAULT_TIMEOUT_SECONDS

    def public(self) -> dict[str, object]:
        """JSON-ready, for ``_run.json`` and the web UI."""
        return {
            "actions": [{"phase": a.phase, "at": a.at, "command": a.command} for a in self.actions],
            "action_failure": "stop" if self.stop_on_failure else "continue",
            "action_timeout": self.timeout,
        }


def parse_action(raw: str) -> tuple[float, str]:
    """``30s:kubectl rollout restart deployment/log-service`` -> (30.0, the command)."""
    # Imported here: importing locust monkey-patches the process, and the web UI's tabs import this module's
    # constants in processes (tests) that must stay unpatched.
    from locust.util.timespan import parse_timespan

    at, sep, command = str(raw).partition(":")
    if not sep or not command.strip():
        raise ActionError("--action", raw, ACCEPTED)
    try:
        seconds = parse_timespan(at.strip())
    except ValueError:
        raise ActionError("--action", raw, ACCEPTED) from None
    return float(seconds), command.strip()


def parse_plan(raw_actions: list[str] | str | None, failure: str = "continue",
               timeout: object = DEFAULT_TIMEOUT_SECONDS) -> ActionPlan:  # fmt: skip
    """Validate the options into an ActionPlan (actions sorted by time, numbered from phase 1); raise ActionError."""
    items = [raw_actions] if isinstance(raw_actions, str) else list(raw_actions or ())
    timed = sorted((parse_action(item) for item in items), key=lambda pair: pair[0])
    if str(failure) not in FAILURE_POLICIES:
        raise ActionError("--action-failure", failure, " or ".join(FAILURE_POLICIES))
    try:
        seconds = float(str(timeout).strip())
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise ActionError("--action-timeout", timeout, "a number of seconds > 0")
    actions = tuple(Action(phase, at, command) for phase, (at, command) in enumerate(timed, start=1))
    return ActionPlan(actions, str(failure) == "stop", seconds)
