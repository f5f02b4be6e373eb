"""What the reference server counts, so tests and the audit can compare with the client."""

from __future__ import annotations

import contextlib
import copy
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ServerStats:
    """Counters since the process started (a SIGHUP restart keeps them): calls per method, logs acked/stored/refused,
    dropped by the drop fault, lost to failed flushes (``flush_failed``: acknowledged, never stored), dropped from
    the queue by a stop with ``--on-stop drop-queue`` (``dropped_on_stop``), restarts, injected faults; with
    ``--count-by KEY``, ``by_metadata``: acked, stored and dropped_on_stop per value of that metadata key."""

    calls: dict[str, int] = field(default_factory=dict)
    acked: int = 0
    stored: int = 0
    dropped: int = 0
    flush_failed: int = 0
    dropped_on_stop: int = 0
    restarts: int = 0
    by_metadata: dict[str, dict[str, int]] = field(default_factory=dict)
    rejected_queue_full: int = 0
    injected_errors: int = 0
    injected_latency_calls: int = 0
    metadata_keys_seen: dict[str, int] = field(default_factory=dict)

    def snapshot(self) -> ServerStats:
        """A copy that later counting does not change."""
        return copy.deepcopy(self)

    def count_values(self, kind: str, entries: Iterable[Any], key: str) -> None:
        """``--count-by KEY``: count ``entries`` (LogEntry) under ``by_metadata[kind][their value of KEY]``."""
        counts = self.by_metadata.setdefault(kind, {})
        for entry in entries:
            value = entry.metadata.get(key, "")
            counts[value] = counts.get(value, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def write_stats_file(path: str, stats: ServerStats) -> None:
    """Write the stats JSON atomically; on a failure (a full disk) the last complete file stays."""
    partial = f"{path}.partial"
    try:
        with open(partial, "w") as handle:
            json.dump(stats.as_dict(), handle, indent=2, sort_keys=True)
        os.replace(partial, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.remove(partial)
        raise
