"""What one call did, as its request event carries it to the suite's listeners.

``GrpcUser.client`` sends a call and fires one Locust request event (``request_type="grpc"``, the RPC
as ``name``, ``response_time`` in ms, ``response_length`` in bytes, ``exception`` for every failure)
with one more keyword, ``call=CallRecord(...)``. The suite's listeners (log counts, the latency
split, service time, phases, freshness samples) read what they need from it and own their state;
a listener of another plugin can read it too. Only calls fire request events: a dropped arrival of
the open model or the preflight is never one.

The suite's listeners name every keyword Locust's request event has (``request_type, name, response_time,
response_length, response, context, exception, start_time, url, call``, then ``**_``): they run on every
call, and a listener taking only a few keywords makes Python build a dict of the rest each time (1.8 µs
a call against 0.7 µs, measured on the busy 2-core machine).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class CallRecord:
    """One call's logs and timing.

    ``sent``: logs the call carried (0 for a QueryLog); ``acked``: logs the service acknowledged;
    ``in_doubt``: logs whose fate is unknown (a deadline, a broken connection after sending);
    ``audit_acked`` / ``audit_in_doubt``: the same among the logs carrying the run id (what the
    delivery audit counts); ``cause``: ``OK`` or the failure's cause (``RESOURCE_EXHAUSTED``,
    ``APP_FAILURE``, ...); ``scheduled``: the open model's scheduled start (epoch s; 0.0 in a closed
    model); ``service_us``: µs from sending the call to its answer; ``phase``: the ``--action``
    phase its logs were tagged with (None without actions); ``sample``: the freshness probe's
    sample it carries (None for most calls).
    """

    sent: int
    acked: int
    in_doubt: int
    audit_acked: int
    audit_in_doubt: int
    cause: str
    scheduled: float = 0.0
    service_us: int = 0
    phase: int | None = None
    sample: Any = None

    @property
    def rejected(self) -> int:
        """Logs sent and surely not acknowledged (refusals, application failures, partial batches)."""
        return self.sent - self.acked - self.in_doubt
