"""Result records returned by the clients: server-side failures are reported, not raised."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

OK = "OK"
APP_FAILURE = "APP_FAILURE"
PARTIAL_BATCH = "PARTIAL_BATCH"


@dataclass
class _Record:
    def as_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready), the shape the seed clients returned."""
        return dataclasses.asdict(self)


@dataclass
class WriteResult(_Record):
    """Outcome of one WriteLog: ``status`` is the gRPC status name, ``cause`` the failure kind.

    Exactly one of: acknowledged (``success``), rejected (neither), in doubt (``in_doubt``: the call failed after
    its request may have reached the service, which may have queued it).
    """

    success: bool
    log_id: str = ""
    error_message: str = ""
    status: str = OK
    cause: str = ""
    in_doubt: bool = False


@dataclass
class ChunkResult(_Record):
    """Outcome of one BatchWriteLog RPC (one chunk of a batch); ``in_doubt``: its ``sent`` logs may have been queued."""

    sent: int
    accepted: int
    success: bool
    error_message: str = ""
    status: str = OK
    cause: str = ""
    log_ids: list[str] = field(default_factory=list)
    in_doubt: bool = False


@dataclass
class BatchResult(_Record):
    """Outcome of ``batch_write_logs``: counts over all chunks, partial batches included."""

    total_count: int
    success_count: int
    error_count: int
    errors: list[str] = field(default_factory=list)
    results: list[ChunkResult] = field(default_factory=list)

    @property
    def success(self) -> bool:
        """Every entry was accepted."""
        return self.error_count == 0

    @property
    def partial(self) -> bool:
        """Some entries were accepted and some were not."""
        return 0 < self.success_count < self.total_count

    @property
    def in_doubt_count(self) -> int:
        """Entries of chunks whose calls failed after they may have reached the service."""
        return sum(chunk.sent for chunk in self.results if chunk.in_doubt)

    @property
    def log_ids(self) -> list[str]:
        """Ids of the accepted entries, in order."""
        return [log_id for chunk in self.results for log_id in chunk.log_ids]

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "success": self.success, "partial": self.partial,
                "in_doubt_count": self.in_doubt_count}  # fmt: skip


@dataclass
class QueryResult(_Record):
    """Outcome of QueryLog: ``total_count`` counts every match, whatever the limit."""

    success: bool
    logs: list[dict[str, Any]] = field(default_factory=list)
    total_count: int = 0
    error_message: str = ""
    status: str = OK
    cause: str = ""


@dataclass
class HealthResult(_Record):
    """Whether the target answers as a LogService, how it was checked, and how fast."""

    serving: bool
    target: str
    status: str
    detail: str
    method: str
    latency_ms: float
