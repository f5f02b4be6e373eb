"""Logs sent and acknowledged per RPC name: counters, never per-request lists.

A batch request carries many logs, so logs/s is counted next to Locust's requests/s. Workers
send their counts to the master with each stats report (``report_to_master``), and the master
adds them up (``worker_report``), the way Locust aggregates its own stats.
"""

from __future__ import annotations

from dataclasses import dataclass, field

REPORT_KEY = "grpc_log_counts"


@dataclass
class RpcLogs:
    """Counts for one request name."""

    requests: int = 0
    sent: int = 0
    acked: int = 0

    @property
    def rejected(self) -> int:
        """Logs sent but not acknowledged (gRPC errors, application failures, partial batches)."""
        return self.sent - self.acked


@dataclass
class LogCounter:
    """Per-name log counts (reset with Locust's stats) and the run's acknowledged total (never reset)."""

    by_name: dict[str, RpcLogs] = field(default_factory=dict)
    run_acked: int = 0
    run_sent: int = 0
    _unreported: dict[str, list[int]] = field(default_factory=dict)

    def add(self, name: str, sent: int, acked: int) -> None:
        """Count one RPC that carried ``sent`` logs, ``acked`` of them acknowledged."""
        logs = self.by_name.get(name)
        if logs is None:
            logs = self.by_name[name] = RpcLogs()
        logs.requests += 1
        logs.sent += sent
        logs.acked += acked
        self.run_sent += sent
        self.run_acked += acked
        pending = self._unreported.get(name)
        if pending is None:
            self._unreported[name] = [1, sent, acked]
        else:
            pending[0] += 1
            pending[1] += sent
            pending[2] += acked

    def take_report(self) -> dict[str, list[int]]:
        """The counts since the last report (a worker sends these to the master)."""
        report, self._unreported = self._unreported, {}
        return report

    def merge_report(self, report: dict[str, list[int]]) -> None:
        """Add a worker's report to this (master's) counter."""
        for name, (requests, sent, acked) in report.items():
            logs = self.by_name.setdefault(name, RpcLogs())
            logs.requests += requests
            logs.sent += sent
            logs.acked += acked
            self.run_sent += sent
            self.run_acked += acked

    def total(self) -> RpcLogs:
        """The counts over every name."""
        return RpcLogs(
            requests=sum(logs.requests for logs in self.by_name.values()),
            sent=sum(logs.sent for logs in self.by_name.values()),
            acked=sum(logs.acked for logs in self.by_name.values()),
        )

    def reset_stats(self) -> None:
        """Forget the per-name counts (Locust's Reset Stats); the run's totals stay for the audit."""
        self.by_name.clear()

    def start_run(self) -> None:
        """Forget everything at the start of a new test."""
        self.by_name.clear()
        self._unreported.clear()
        self.run_acked = self.run_sent = 0
