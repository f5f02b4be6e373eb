"""When the test is to end, known on every process: the master's (or the single process's) Locust options carry it
to the workers, which Locust does not tell its run time (``-t`` stays on the master; a worker's is dropped).

The master sets ``grpc_test_ends_at`` (epoch seconds on its clock, None when no end is known) in its options at
``test_start``, before Locust sends its workers the spawn messages that carry the options not Locust's own (as the
run id travels), and again when a ``/swarm`` of a running test sets a new run time or none (Locust's web UI then
restarts or cancels its timer). A worker reads the value each spawn message brings: a worker on another machine
takes the master's clock as its own (NTP keeps them within milliseconds; a skew of S seconds moves the end by S).
"""

from __future__ import annotations

import math
from typing import Any

from locust.util.timespan import parse_timespan

TEST_ENDS_AT_OPTION = "grpc_test_ends_at"


def run_time_seconds(value: Any) -> float | None:
    """A run time as Locust keeps it (seconds, or a timespan text such as the web UI's ``1m30s``) in seconds; None
    for none (empty, 0, unreadable)."""
    if isinstance(value, str):
        try:
            value = parse_timespan(value) if value.strip() else None
        except ValueError:
            return None
    return float(value) if isinstance(value, int | float) and value > 0 else None


def swarm_run_time(form: Any) -> float | None:
    """The run time of a web UI ``/swarm`` form in seconds (None: the field left empty or out, no timer)."""
    return run_time_seconds(form.get("run_time") or "")


def set_test_end(environment: Any, run_time: float | None, now: float) -> None:
    """The test ends ``run_time`` s after ``now`` (epoch s; None: no known end), on this process and, with the next
    spawn message, on every worker."""
    if environment.parsed_options is not None:
        setattr(environment.parsed_options, TEST_ENDS_AT_OPTION, None if run_time is None else now + run_time)


def known_test_end(environment: Any) -> float:
    """When the test is to end (epoch s on the master's clock), infinite when no end is known."""
    ends_at = getattr(environment.parsed_options, TEST_ENDS_AT_OPTION, None)
    return float(ends_at) if isinstance(ends_at, int | float) else math.inf
