"""The open model's arrivals: calls offered, calls made, and starts dropped by cause, counted by the suite.

A dropped arrival is not a request: it never reaches the service, so it stays out of Locust's stats
(requests/s, percentiles, failures) and every gate that reads them. Counters, never lists: the
dispatcher adds drops in bulk. Workers send theirs to the master with each stats report, the way
the log counts travel.

``grpc_user.run_files`` writes them to ``<prefix>_arrivals.csv`` (the whole test, drops by cause) and
``<prefix>_arrivals_history.csv`` (cumulative, every interval).
"""

from __future__ import annotations

from dataclasses import dataclass, field

REPORT_KEY = "grpc_arrivals"
USERS_BUSY = "USERS_BUSY"
USERS_NOT_READY = "USERS_NOT_READY"
GENERATOR_BEHIND = "GENERATOR_BEHIND"
# Why a scheduled start found no user to make its call, in words (the report and the summary line use them).
DROP_CAUSES = {
    USERS_BUSY: "every user was busy with a call at the scheduled start (raise -u)",
    USERS_NOT_READY: "no user was ready for work at the scheduled start (users not spawned yet, or in their own "
                     "wait_time or task code between calls)",
    GENERATOR_BEHIND: "the generator could not keep up with its clock (this process cannot dispatch the rate: "
                      "add --processes or workers)",
}  # fmt: skip


@dataclass
class ArrivalCounter:
    """Arrivals of this test: made (handed to a user) and dropped by cause; offered is their sum."""

    made: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    _unreported: list[int] = field(default_factory=lambda: [0] * (1 + len(DROP_CAUSES)))

    @property
    def offered(self) -> int:
        """Scheduled starts: made plus dropped."""
        return self.made + self.total_dropped

    @property
    def total_dropped(self) -> int:
        """Starts dropped, every cause."""
        return sum(self.dropped.values())

    def add_made(self, count: int = 1) -> None:
        """``count`` starts handed to a user (each is one call)."""
        self.made += count
        self._unreported[0] += count

    def add_dropped(self, cause: str, count: int) -> None:
        """``count`` starts no user took, for ``cause`` (a key of DROP_CAUSES)."""
        if count > 0:
            self.dropped[cause] = self.dropped.get(cause, 0) + count
            self._unreported[1 + list(DROP_CAUSES).index(cause)] += count

    def take_report(self) -> list[int]:
        """The counts since the last report (a worker sends these to the master): made, then drops per cause."""
        report, self._unreported = self._unreported, [0] * (1 + len(DROP_CAUSES))
        return report

    def merge_report(self, report: list[int]) -> None:
        """Add a worker's report to this (master's) counter."""
        if not report:
            return
        self.made += report[0]
        for cause, count in zip(DROP_CAUSES, report[1:], strict=True):
            if count:
                self.dropped[cause] = self.dropped.get(cause, 0) + count

    def start_run(self) -> None:
        """Forget everything at the start of a new test (a reset of Locust's stats does too)."""
        self.made = 0
        self.dropped = {}
        self._unreported = [0] * (1 + len(DROP_CAUSES))

    def reset_stats(self) -> None:
        """Locust's Reset Stats: the counts start again (the reports not sent yet are kept)."""
        self.made = 0
        self.dropped = {}

    def summary(self) -> str:
        """One line: offered, made, dropped, and the drops by cause in words ('' when none was offered)."""
        if not self.offered:
            return ""
        line = f"Arrivals: {self.offered:,} calls offered, {self.made:,} made, {self.total_dropped:,} dropped"
        causes = [f"{count:,} because {DROP_CAUSES[cause]}" for cause, count in self.dropped.items() if count]
        return line + (": " + "; ".join(causes) if causes else "")
