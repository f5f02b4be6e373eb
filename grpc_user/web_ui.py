"""Tabs in Locust's web UI: "Logs" (logs sent, acknowledged and rejected per RPC, and logs/s) and
"Delivery audit" (the audit of the last test, once it stopped).

Uses Locust's documented extension points (``extended_tabs`` / ``extended_tables`` template
arguments and ``extended_stats`` in the ``/stats/requests`` answer), as in Locust's
``examples/extend_web_ui.py``.
"""

from __future__ import annotations

import json
import time
from collections import deque
from typing import Any

from flask import request

from grpc_user.suite_run import suite_run

TAB_KEY = "grpc-logs"
AUDIT_TAB_KEY = "grpc-audit"
AUDIT_FIGURES = ("status", "run_id", "acked", "persisted", "lost", "unexpected", "settle_seconds", "detail")
RATE_WINDOW_SECONDS = 10.0
COLUMNS = (
    ("name", "Name"),
    ("requests", "# Requests"),
    ("logs_sent", "Logs sent"),
    ("logs_acked", "Logs acknowledged"),
    ("logs_rejected", "Logs rejected"),
    ("acked_per_second", "Current logs/s acknowledged"),
)


class LogsRate:
    """Current logs/s per name from cumulative counts sampled by the UI's polling."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, dict[str, int]]] = deque()

    def sample(self, acked: dict[str, int]) -> dict[str, float]:
        """Record the counts now and return the rate over the last few seconds."""
        now = time.monotonic()
        self._samples.append((now, acked))
        while len(self._samples) > 2 and now - self._samples[0][0] > RATE_WINDOW_SECONDS:
            self._samples.popleft()
        then, before = self._samples[0]
        elapsed = now - then
        if elapsed <= 0:
            return {name: 0.0 for name in acked}
        return {name: max(0.0, (count - before.get(name, 0)) / elapsed) for name, count in acked.items()}


def logs_rows(environment: Any, rate: LogsRate) -> list[dict[str, Any]]:
    """The rows of the Logs tab, one per request name and an Aggregated row."""
    counter = suite_run(environment).counter
    named = sorted(counter.by_name.items()) + [("Aggregated", counter.total())]
    rates = rate.sample({name: logs.acked for name, logs in named})
    return [
        {
            "name": name,
            "safe_name": name,
            "requests": logs.requests,
            "logs_sent": logs.sent,
            "logs_acked": logs.acked,
            "logs_rejected": logs.rejected,
            "acked_per_second": round(rates.get(name, 0.0), 1),
        }
        for name, logs in named
    ]


def audit_rows(environment: Any) -> list[dict[str, Any]]:
    """The rows of the Delivery audit tab: one per figure of the last test's audit."""
    audit = suite_run(environment).audit
    if audit is None:
        return [{"name": "status", "safe_name": "status", "value": "runs when the test stops"}]
    return [{"name": key, "safe_name": key, "value": audit.get(key, "")} for key in AUDIT_FIGURES]


def install_logs_tab(environment: Any, web_ui: Any) -> None:
    """Add the Logs and Delivery audit tabs to the web UI and their rows to every ``/stats/requests`` answer."""
    rate = LogsRate()
    web_ui.template_args["extended_tabs"] = [
        {"title": "Logs", "key": TAB_KEY},
        {"title": "Delivery audit", "key": AUDIT_TAB_KEY},
    ]
    web_ui.template_args["extended_tables"] = [
        {"key": TAB_KEY, "structure": [{"key": key, "title": title} for key, title in COLUMNS]},
        {"key": AUDIT_TAB_KEY, "structure": [{"key": "name", "title": "Figure"}, {"key": "value", "title": "Value"}]},
    ]

    @web_ui.app.after_request
    def add_logs_stats(response: Any) -> Any:
        if request.path != "/stats/requests" or not response.is_json:
            return response
        extended = [
            {"key": TAB_KEY, "data": logs_rows(environment, rate)},
            {"key": AUDIT_TAB_KEY, "data": audit_rows(environment)},
        ]
        response.set_data(json.dumps({**response.get_json(), "extended_stats": extended}))
        return response
