"""The bounded queue between acknowledgement and storage, and the flusher that drains it.

As in the real service: a write is acknowledged when its entry is queued; the flusher stores
batches of ``flush_batch`` when one fills or every ``flush_period`` seconds; a dropped log
(``--drop-rate``) is acknowledged and never stored, and nothing tells the client. A flush that
fails (a full disk) is logged and its batch dropped, and flushing goes on: acknowledged logs lost,
which the delivery audit exists to find.

A graceful stop lets the flush under way finish (never cancelled mid-batch), then either stores
everything still queued (``--on-stop flush``) or, as the real service does, stores the batch it is
building (the oldest ``flush_batch`` queued logs) and drops the rest (``--on-stop drop-queue``),
counted in ``dropped_on_stop``. The store outlives a stop: a restart resumes flushing into it.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from grpc_user.pb import log_service_pb2 as pb
from reference_server.faults import Faults
from reference_server.settings import ServerSettings
from reference_server.stats import ServerStats, write_stats_file
from reference_server.storage import LogStore

logger = logging.getLogger(__name__)
FAILURE_LOG_SECONDS = 1.0


class LogQueue:
    """Queued entries waiting for the flusher; at most ``capacity``."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.entries: deque[pb.LogEntry] = deque()
        self.filled = asyncio.Event()

    def offer(self, entries: Sequence[pb.LogEntry], batch_size: int) -> int:
        """Queue as many entries as fit; return how many."""
        room = self.capacity - len(self.entries)
        accepted = entries if len(entries) <= room else entries[: max(room, 0)]
        self.entries.extend(accepted)
        if len(self.entries) >= batch_size:
            self.filled.set()
        return len(accepted)

    def take(self, count: int) -> list[pb.LogEntry]:
        """Up to ``count`` entries, oldest first."""
        pop = self.entries.popleft
        return [pop() for _ in range(min(count, len(self.entries)))]


class Flusher:
    """Moves queued entries to the store on one storage thread."""

    def __init__(self, settings: ServerSettings, queue: LogQueue, store: LogStore, faults: Faults,
                 stats: ServerStats) -> None:  # fmt: skip
        self._settings, self.queue, self._store, self.faults, self._stats = settings, queue, store, faults, stats
        self._storage = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reference-storage")
        self._queries = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reference-queries")
        self._closing = False
        self._dropping = False
        self._logged_at: dict[str, float] = {}

    @property
    def pending(self) -> int:
        """Entries queued and not yet stored."""
        return len(self.queue.entries)

    async def in_storage_thread(self, work: Callable[..., Any], *args: Any) -> Any:
        """Run database work on the storage thread (the only thread that touches SQLite)."""
        return await asyncio.get_running_loop().run_in_executor(self._storage, work, *args)

    async def run(self) -> None:
        """Flush whenever a batch fills or the flush period passes, until ``close``."""
        while not self._closing:
            try:
                await asyncio.wait_for(self.queue.filled.wait(), self._settings.flush_period)
            except TimeoutError:
                pass
            self.queue.filled.clear()
            await self.flush_all()

    async def flush_all(self) -> None:
        """Store everything queued now, in batches of ``flush_batch`` (a stop that drops the queue ends it early); the
        stats file is rewritten after each batch (a slow store's progress shows while its queue drains) and at the
        end of each flush."""
        while self.queue.entries and not self._dropping:
            await self._store_batch(self.queue.take(self._settings.flush_batch))
            if self.queue.entries:
                self.write_stats()
        self.write_stats()

    async def _store_batch(self, batch: list[pb.LogEntry]) -> None:
        delay = self.faults.storage_delay(len(batch))
        if delay:
            await asyncio.sleep(delay)
        keep = self.faults.keep(len(batch))
        kept = [entry for entry, stored in zip(batch, keep, strict=True) if stored]
        self._stats.dropped += len(batch) - len(kept)
        try:
            self._stats.stored += await self.in_storage_thread(self._store.store, kept)
        except (sqlite3.Error, OSError) as error:
            self._flush_failed(len(kept), error)
            return
        if self._settings.count_by:
            self._stats.count_values("stored", kept, self._settings.count_by)

    def _flush_failed(self, count: int, error: Exception) -> None:
        """A batch that could not be stored is dropped, as the real service drops it; logged at most once a second."""
        self._stats.flush_failed += count
        if self._may_log("flush"):
            logger.error("flush failed, %d acknowledged logs dropped (%d so far): %s", count,
                         self._stats.flush_failed, error)  # fmt: skip

    def _may_log(self, failure: str) -> bool:
        """At most one line a second per kind of failure: a full disk fails every flush."""
        now = time.monotonic()
        if now - self._logged_at.get(failure, -FAILURE_LOG_SECONDS) < FAILURE_LOG_SECONDS:
            return False
        self._logged_at[failure] = now
        return True

    async def query(self, request: pb.QueryLogRequest) -> tuple[list[pb.LogEntry], int]:
        """Run a QueryLog against the store, on the query thread (flushes go on meanwhile)."""
        return await asyncio.get_running_loop().run_in_executor(self._queries, self._store.query, request)

    def write_stats(self) -> None:
        """Rewrite the stats file, if there is one; a failure (a full disk) is logged and flushing goes on."""
        if not self._settings.stats_file:
            return
        try:
            write_stats_file(self._settings.stats_file, self._stats)
        except OSError as error:
            if self._may_log("stats"):
                logger.error("the stats file %s could not be written: %s", self._settings.stats_file, error)

    async def stop(self, running: asyncio.Task, drop_queue: bool) -> None:
        """End flushing: the flush under way finishes; then everything queued is stored, or (``drop_queue``) the
        batch being built is stored and the rest of the queue dropped, as the real service does on SIGTERM."""
        self._closing, self._dropping = True, drop_queue
        self.queue.filled.set()
        await running
        if drop_queue:
            await self._store_batch(self.queue.take(self._settings.flush_batch))
            dropped = len(self.queue.entries)
            if self._settings.count_by:
                self._stats.count_values("dropped_on_stop", self.queue.entries, self._settings.count_by)
            self.queue.entries.clear()
            self._stats.dropped_on_stop += dropped
            if dropped:
                logger.warning("--on-stop drop-queue: %d acknowledged logs dropped from the queue", dropped)
        await self.flush_all()
        self._closing = self._dropping = False

    async def close(self) -> None:
        """Close the store and the threads (after ``stop``)."""
        self._queries.shutdown(wait=True)
        try:
            await self.in_storage_thread(self._store.close)
        except (sqlite3.Error, OSError) as error:
            logger.error("closing the store failed: %s", error)
        self._storage.shutdown(wait=True)
