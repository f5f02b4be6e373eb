"""A run's actions (``_actions.csv``) and what each cost: its phase's delivery audit, and the failures and latency
around it read from the stats history.

Around an action, an interval of the history is *disrupted* when it has failures or its requests/s
falls below 90% of the mean of the 10 s before the action. The action's window runs from its start
to the next action's start (or the end of the run). Time to recover: from the action's start to the
first of 3 undisrupted intervals in a row after its first disrupted one (or of the undisrupted ones
that end the window): 0 when none was disrupted, None when the window ends disrupted. Failed calls:
the failures from the action's start to that recovery (or to the window's end). Worst latency: the
highest p99 of Locust's current-window percentile over the same span.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

BASELINE_SECONDS = 10.0
DISRUPTED_RPS_SHARE = 0.9
STABLE_INTERVALS = 3


@dataclass
class ActionFigures:
    """One action: what ran, how it ended, its phase's audit, and the failures and latency around it.

    ``start_seconds`` is since the stats history's first row (the charts' x axis), None without history.
    """

    phase: int
    at: float
    command: str
    status: str
    exit_code: str
    duration: float | None
    output: str
    started_at: float | None
    start_seconds: float | None = None
    time_to_recover: float | None = None
    disrupted: bool = False
    failed_calls: int | None = None
    worst_p99_ms: float | None = None
    audit: dict[str, Any] | None = None


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def read_actions(frame: pd.DataFrame | None, audit: dict[str, Any] | None) -> list[ActionFigures]:
    """The actions of ``_actions.csv`` with their phases' audits from ``_audit.json`` (``phases``)."""
    if frame is None:
        return []
    phases = {int(phase["phase"]): phase for phase in (audit or {}).get("phases", []) if isinstance(phase, dict)}
    actions = []
    for _, row in frame.iterrows():
        exit_code, output = _number(row.get("Exit Code")), row.get("Output")
        actions.append(ActionFigures(
            phase=int(row["Phase"]), at=float(row["At (s)"]), command=str(row["Command"]), status=str(row["Status"]),
            exit_code="" if exit_code is None else str(int(exit_code)), duration=_number(row.get("Duration (s)")),
            output="" if pd.isna(output) else str(output), started_at=_number(row.get("Started (unix s)")),
            audit=phases.get(int(row["Phase"]))))  # fmt: skip
    return sorted(actions, key=lambda action: action.phase)


def _first_stable(disrupted: np.ndarray) -> int | None:
    """Index of the first of STABLE_INTERVALS undisrupted intervals in a row after the first disrupted one (or of the
    undisrupted intervals that end the window); None when the window ends disrupted."""
    calm = 0
    for index in range(int(np.flatnonzero(disrupted)[0]) + 1, len(disrupted)):
        calm = 0 if disrupted[index] else calm + 1
        if calm == STABLE_INTERVALS:
            return index - STABLE_INTERVALS + 1
    return len(disrupted) - calm if calm else None


def measure_around(actions: list[ActionFigures], first_stamp: float, seconds: np.ndarray, rps: np.ndarray,
                   failures_per_second: np.ndarray, p99: np.ndarray) -> None:  # fmt: skip
    """Fill each action's start on the history's axis, time to recover, failed calls and worst p99.

    ``seconds``: history rows since ``first_stamp``; ``rps`` and ``failures_per_second`` per interval (one fewer);
    ``p99`` per row.
    """
    if len(seconds) < 2:
        return
    starts, ends, widths = seconds[:-1], seconds[1:], np.diff(seconds)
    for index, action in enumerate(actions):
        moment = action.started_at - first_stamp if action.started_at is not None else None
        if moment is None:
            continue
        action.start_seconds = moment
        following = [a.started_at - first_stamp for a in actions[index + 1 :] if a.started_at is not None]
        window_end = min(following, default=float(seconds[-1]))
        before = (ends <= moment) & (ends > moment - BASELINE_SECONDS)
        baseline = float(np.mean(rps[before])) if before.any() else None
        inside = np.flatnonzero((ends > moment) & (starts < window_end))
        if len(inside) == 0:
            continue
        disrupted = failures_per_second[inside] > 0
        if baseline:
            disrupted |= rps[inside] < DISRUPTED_RPS_SHARE * baseline
        action.disrupted = bool(disrupted.any())
        if not action.disrupted:
            action.time_to_recover, span = 0.0, inside
        else:
            recovery = _first_stable(disrupted)
            action.time_to_recover = None if recovery is None else float(starts[inside[recovery]] - moment)
            span = inside[:recovery] if recovery is not None else inside
        action.failed_calls = int(round(float(np.sum(failures_per_second[span] * widths[span]))))
        rows = np.concatenate([span, span + 1])
        worst = p99[rows][~np.isnan(p99[rows])]
        action.worst_p99_ms = float(worst.max()) if len(worst) else None
