"""The delivery audit's barriers in a reference server's own totals (``grpc_user.locust.audit.barrier``).

An audit that finds logs missing writes one or more barrier logs after the stop. The server counts them like any
log: taken out here, its totals are the run's alone. Count the stored barriers while the server still runs.
"""

from __future__ import annotations

import copy
from typing import Any

from grpc_user import LogClient
from grpc_user.locust.audit.barrier import BARRIER_KEY


def stored_barriers(target: str, run_id: str) -> int:
    """How many of the audit of ``run_id``'s barriers the server at ``target`` stores."""
    with LogClient(target) as client:
        return client.query_logs(**{BARRIER_KEY: run_id}, limit=1).total_count


def without_barriers(stats: dict[str, Any], audit: dict[str, Any], stored: int) -> dict[str, Any]:
    """The server's ``stats`` with the audit's barriers (``audit["barriers"]`` written, ``stored`` of them stored,
    the rest dropped) taken out of its WriteLog calls and its acked, stored and dropped logs."""
    written, run = audit.get("barriers", 0), copy.deepcopy(stats)
    run["acked"] -= written
    run["stored"] -= stored
    run["dropped"] -= written - stored
    if written:
        run["calls"]["WriteLog"] -= written
    return run
