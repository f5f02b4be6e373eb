"""Logs sent and acknowledged per RPC name: counters, never per-request lists.

A batch request carries many logs, so logs/s is counted next to Locust's requests/s. Workers
send their counts to the master with each stats report (``report_to_master``), and the master
adds them up (``worker_report``), the way Locust aggregates its own stats.

A log is *in doubt* when its call failed in a way that leaves the service's answer unknown (a
deadline, a cancel, a connection broken mid-call): the service may have queued it anyway. The
delivery audit counts only logs that carry the run id: ``audit_acked`` and ``audit_in_doubt``.

``LogCounter`` is a listener of Locust's request event: each call's ``CallRecord`` (``call=``) is counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grpc_user.locust.counts.record import CallRecord

REPORT_KEY = "grpc_log_counts"


@dataclass
class RpcLogs:
    """Counts for one request name."""

    requests: int = 0
    sent: int = 0
    acked: int = 0
    in_doubt: int = 0

    def add(self, requests: int, sent: int, acked: int, in_doubt: int) -> None:
        """Add counts of more requests."""
        self.requests += requests
        self.sent += sent
        self.acked += acked
        self.in_doubt += in_doubt

    @property
    def rejected(self) -> int:
        """Logs sent and surely not acknowledged (refusals, application failures, partial batches)."""
        return self.sent - self.acked - self.in_doubt


@dataclass
class LogCounter:
    """Per-name log counts (reset with Locust's stats) and the run's audited totals (never reset)."""

    by_name: dict[str, RpcLogs] = field(default_factory=dict)
    run_sent: int = 0
    run_requests: int = 0
    audit_acked: int = 0
    audit_in_doubt: int = 0
    _unreported: dict[str, list[int]] = field(default_factory=dict)

    def on_request(self, request_type: str, name: str, response_time: float, response_length: int, response: Any = None,
                   context: Any = None, exception: Any = None, start_time: float | None = None, url: str | None = None,
                   call: CallRecord | None = None, **_: Any) -> None:  # fmt: skip
        """Locust's request event: count the call's logs under its request ``name`` (events without ``call`` are not
        the suite's calls)."""
        if call is None:
            return
        sent, acked, in_doubt, audit_acked, audit_in_doubt = (call.sent, call.acked, call.in_doubt, call.audit_acked,
                                                              call.audit_in_doubt)  # fmt: skip
        logs = self.by_name.get(name)
        if logs is None:
            logs = self.by_name[name] = RpcLogs()
        logs.requests += 1  # spelled out, as below: this runs once per call
        logs.sent += sent
        logs.acked += acked
        logs.in_doubt += in_doubt
        pending = self._unreported.get(name)
        if pending is None:
            self._unreported[name] = [1, sent, acked, in_doubt, audit_acked, audit_in_doubt]
        else:
            pending[0] += 1
            pending[1] += sent
            pending[2] += acked
            pending[3] += in_doubt
            pending[4] += audit_acked
            pending[5] += audit_in_doubt
        self.run_sent += sent
        self.run_requests += 1
        self.audit_acked += audit_acked
        self.audit_in_doubt += audit_in_doubt

    def take_report(self) -> dict[str, list[int]]:
        """The counts since the last report (a worker sends these to the master)."""
        report, self._unreported = self._unreported, {}
        return report

    def merge_report(self, report: dict[str, list[int]]) -> None:
        """Add a worker's report to this (master's) counter."""
        for name, (requests, sent, acked, in_doubt, audit_acked, audit_in_doubt) in report.items():
            self.by_name.setdefault(name, RpcLogs()).add(requests, sent, acked, in_doubt)
            self.run_sent += sent
            self.run_requests += requests
            self.audit_acked += audit_acked
            self.audit_in_doubt += audit_in_doubt

    def total(self) -> RpcLogs:
        """The counts over every name."""
        return RpcLogs(
            requests=sum(logs.requests for logs in self.by_name.values()),
            sent=sum(logs.sent for logs in self.by_name.values()),
            acked=sum(logs.acked for logs in self.by_name.values()),
            in_doubt=sum(logs.in_doubt for logs in self.by_name.values()),
        )

    def reset_stats(self) -> None:
        """Forget the per-name counts (Locust's Reset Stats); the run's totals stay for the audit."""
        self.by_name.clear()

    def start_run(self) -> None:
        """Forget everything at the start of a new test."""
        self.by_name.clear()
        self._unreported.clear()
        self.run_sent = self.run_requests = self.audit_acked = self.audit_in_doubt = 0
