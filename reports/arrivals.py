"""The open model's arrivals in a report: calls offered, made and dropped side by side, and per interval.

Read from the suite's ``_arrivals.csv`` and ``_arrivals_history.csv`` (cumulative counts every stats
interval), so each drop counts in the interval in which it happened. Dropped arrivals are not
requests: they never reached the service and are in none of Locust's figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from grpc_user.run_files.schema import DROPPED_CAUSE_PREFIX


@dataclass
class Arrivals:
    """Totals of the whole run, drops by cause, and per-interval rates (seconds since the first row)."""

    offered: int
    made: int
    dropped: int
    dropped_by_cause: dict[str, int]
    intervals: pd.DataFrame | None  # columns: seconds, offered/s, made/s, dropped/s


def arrival_figures(totals: pd.DataFrame | None, history: pd.DataFrame | None) -> Arrivals | None:
    """The arrivals of a run with ``--arrival-rate`` or ``--capacity-search``; None for a closed model."""
    if totals is None:
        return None
    row = totals.iloc[-1]
    by_cause = {column[len(DROPPED_CAUSE_PREFIX):]: int(row[column]) for column in totals.columns
                if column.startswith(DROPPED_CAUSE_PREFIX) and int(row[column])}  # fmt: skip
    return Arrivals(int(row["Offered"]), int(row["Made"]), int(row["Dropped"]), by_cause, _intervals(history))


def _intervals(history: pd.DataFrame | None) -> pd.DataFrame | None:
    if history is None or len(history) < 2:
        return None
    ordered = history.drop_duplicates("Timestamp", keep="last").sort_values("Timestamp")
    seconds = ordered["Timestamp"].diff()
    steps = ordered[["Offered", "Made", "Dropped"]].diff().div(seconds, axis=0)
    frame = pd.DataFrame({"seconds": ordered["Timestamp"] - ordered["Timestamp"].iloc[0], "offered/s": steps["Offered"],
                          "made/s": steps["Made"], "dropped/s": steps["Dropped"]})  # fmt: skip
    return frame.iloc[1:][seconds.iloc[1:] > 0].reset_index(drop=True)
