"""Logs per phase of a run with ``--action``: phase N is the time after the Nth action started (0 before any).

Each log sent carries ``metadata.phase=N`` (the phase when its call was sent), and its call's outcome
is counted under that phase: sent, acknowledged and in doubt, in all and among the logs carrying
the run id (those the delivery audit counts). Counters only; workers send theirs to the master with
each stats report, as ``LogCounter`` does. ``PhaseCounts`` listens to Locust's request event while a test
has actions; the client tags each log with ``current`` before sending it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grpc_user.locust.counts.record import CallRecord

REPORT_KEY = "grpc_phase_counts"
METADATA_KEY = "phase"
# sent, acked, in doubt, audited acked, audited in doubt
FIELDS = 5


@dataclass
class PhaseLogs:
    """One phase's counts."""

    sent: int = 0
    acked: int = 0
    in_doubt: int = 0
    audit_acked: int = 0
    audit_in_doubt: int = 0

    @property
    def rejected(self) -> int:
        """Logs sent and surely not acknowledged."""
        return self.sent - self.acked - self.in_doubt


@dataclass
class PhaseCounts:
    """Per-phase counts of one test (never reset by Locust's Reset Stats: the audit needs the whole run)."""

    current: int = 0
    announced: tuple[str, int] | None = None
    by_phase: dict[int, PhaseLogs] = field(default_factory=dict)
    _unreported: dict[int, list[int]] = field(default_factory=dict)

    def on_request(self, request_type: str, name: str, response_time: float, response_length: int, response: Any = None,
                   context: Any = None, exception: Any = None, start_time: float | None = None, url: str | None = None,
                   call: CallRecord | None = None, **_: Any) -> None:  # fmt: skip
        """Locust's request event: count a call's logs under the phase they were tagged with (``call.phase``)."""
        if call is None or call.phase is None:
            return
        counts = (call.sent, call.acked, call.in_doubt, call.audit_acked, call.audit_in_doubt)
        logs = self.by_phase.get(call.phase)
        if logs is None:
            logs = self.by_phase[call.phase] = PhaseLogs()
        logs.sent += counts[0]
        logs.acked += counts[1]
        logs.in_doubt += counts[2]
        logs.audit_acked += counts[3]
        logs.audit_in_doubt += counts[4]
        pending = self._unreported.setdefault(call.phase, [0] * FIELDS)
        for index, value in enumerate(counts):
            pending[index] += value

    def take_report(self) -> list[list[int]]:
        """The counts since the last report as ``[[phase, sent, acked, in doubt, audited acked, audited in doubt]]``
        (msgpack keeps no int keys)."""
        report = [[phase, *values] for phase, values in self._unreported.items()]
        self._unreported = {}
        return report

    def merge_report(self, report: list[list[int]]) -> None:
        """Add a worker's report (the master)."""
        for phase, *values in report:
            logs = self.by_phase.setdefault(int(phase), PhaseLogs())
            logs.sent += values[0]
            logs.acked += values[1]
            logs.in_doubt += values[2]
            logs.audit_acked += values[3]
            logs.audit_in_doubt += values[4]

    def start_run(self, run_id: str = "") -> None:
        """A new test: phase 0 (or the phase the master already announced for ``run_id``), nothing counted."""
        announced, self.announced = self.announced, None
        self.current = announced[1] if announced and announced[0] == run_id else 0
        self.by_phase.clear()
        self._unreported.clear()
