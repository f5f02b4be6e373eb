"""Generated log entries shaped like the seed clients' test data, deterministic under ``--seed``.

Building a LogEntry with seven metadata pairs from Python costs ~12 µs, more than the whole
per-log budget of a 1000-entry batch. So each process draws a pool of template entries once
(random level, adv_id, aweme_id, plan_id, monitor_type, co_id, message body), and every
generated entry is a C-level copy of a randomly chosen template stamped with its own sequential
trace/span ids and the current timestamp: ~3 µs per entry, serialization included.

The pool holds at most ``POOL_BYTES`` of message text (fewer templates of a large message, never fewer than
``MIN_TEMPLATES``), and the messages are slices at random offsets of one random text buffer: building it costs
milliseconds at any size up to 4 MiB, so a large ``--message-bytes`` never holds up the start or the stops.
"""

from __future__ import annotations

import functools
import random
import string
from collections import deque

from grpc_user.entries import RUN_ID_KEY, utc_now_rfc3339
from grpc_user.levels import parse_level
from grpc_user.pb import log_service_pb2 as pb

MONITOR_TYPES = ("impression", "click", "conversion", "play", "like", "share")
CLIENT_TYPE = "locust_grpc"
TEMPLATE_COUNT = 1024
MIN_TEMPLATES = 2
POOL_BYTES = 8 * 1024 * 1024
RECENT_TRACE_IDS = 64
_TEXT = string.ascii_letters + string.digits + " "
_TO_TEXT = bytes(ord(_TEXT[byte % len(_TEXT)]) for byte in range(256))


def template_count(message_bytes: int) -> int:
    """How many templates a pool of ``message_bytes`` messages holds: ``TEMPLATE_COUNT``, fewer where their text
    would pass ``POOL_BYTES``, never fewer than ``MIN_TEMPLATES``."""
    return max(MIN_TEMPLATES, min(TEMPLATE_COUNT, POOL_BYTES // max(message_bytes, 1)))


def _messages(rng: random.Random, message_bytes: int, count: int) -> list[str]:
    """``count`` texts of ``message_bytes`` ASCII characters: slices at distinct random offsets of one random buffer
    ``count + 1`` messages long (one C-level draw and translate, not a Python call per character)."""
    if not message_bytes:
        return [""] * count
    buffer = rng.randbytes((count + 1) * message_bytes).translate(_TO_TEXT).decode("ascii")
    starts = rng.sample(range(count * message_bytes + 1), count)
    return [buffer[start : start + message_bytes] for start in starts]


@functools.lru_cache(maxsize=8)
def template_pool(run_id: str, service_name: str, message_bytes: int, seed: int | None) -> tuple[pb.LogEntry, ...]:
    """The process's template entries for one run (``template_count(message_bytes)`` of them, their messages
    ``message_bytes`` ASCII characters each); shared read-only by every user."""
    rng = random.Random(seed)
    return tuple(
        pb.LogEntry(
            service_name=service_name,
            level=parse_level(rng.randrange(5)),
            message=message,
            metadata={
                RUN_ID_KEY: run_id,
                "adv_id": str(rng.randrange(1_000_000, 10_000_000)),
                "aweme_id": str(rng.randrange(100_000_000, 1_000_000_000)),
                "plan_id": str(rng.randrange(10_000, 100_000)),
                "monitor_type": rng.choice(MONITOR_TYPES),
                "co_id": str(rng.randrange(1_000, 10_000)),
                "client_type": CLIENT_TYPE,
            },
        )
        for message in _messages(rng, message_bytes, template_count(message_bytes))
    )


class LogDataGenerator:
    """One user's source of requests: sequential trace/span ids over the shared template pool."""

    def __init__(
        self, *, run_id: str, service_name: str, message_bytes: int, seed: int | None, user_index: int
    ) -> None:
        self.run_id = run_id
        self._templates = template_pool(run_id, service_name, message_bytes, seed)
        self._random = random.Random(None if seed is None else seed * 1_000_003 + user_index)
        self._prefix = f"u{user_index}-{self._random.getrandbits(24):06x}"
        self._sequence = 0
        self.recent_trace_ids: deque[str] = deque(maxlen=RECENT_TRACE_IDS)

    def _stamp(self, entry: pb.LogEntry, timestamp: str) -> None:
        self._sequence += 1
        entry.CopyFrom(self._templates[int(self._random.random() * len(self._templates))])
        entry.trace_id = f"trace-{self._prefix}-{self._sequence:06d}"
        entry.span_id = f"span-{self._prefix}-{self._sequence:06d}"
        entry.timestamp = timestamp

    def write_request(self) -> pb.WriteLogRequest:
        """A WriteLogRequest carrying the next generated entry."""
        request = pb.WriteLogRequest()
        self._stamp(request.log_entry, utc_now_rfc3339())
        self.recent_trace_ids.append(request.log_entry.trace_id)
        return request

    def batch_request(self, count: int) -> pb.BatchWriteLogRequest:
        """A BatchWriteLogRequest of ``count`` generated entries, made at one instant."""
        request = pb.BatchWriteLogRequest()
        add, timestamp = request.log_entries.add, utc_now_rfc3339()
        for _ in range(count):
            self._stamp(add(), timestamp)
        self.recent_trace_ids.append(request.log_entries[-1].trace_id)
        return request

    def fields(self) -> dict[str, str]:
        """The next generated entry as ``write_log`` keywords (message included), for custom tasks."""
        entry = self.write_request().log_entry
        return {
            "message": entry.message,
            "service_name": entry.service_name,
            "level": pb.LogLevel.Name(entry.level),
            "trace_id": entry.trace_id,
            "span_id": entry.span_id,
            **dict(entry.metadata),
        }

    def recent_trace_id(self) -> str | None:
        """A trace id this user wrote recently, for queries a log viewer would make."""
        if not self.recent_trace_ids:
            return None
        return self.recent_trace_ids[int(self._random.random() * len(self.recent_trace_ids))]

    def choice(self, weights: tuple[tuple[str, int], ...]) -> str:
        """Pick a kind by weight with this user's random source."""
        return self._random.choices([kind for kind, _ in weights], [weight for _, weight in weights])[0]
