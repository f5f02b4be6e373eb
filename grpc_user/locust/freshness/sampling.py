"""How the freshness probe's samples are taken from calls: the client tags a log of a call that is due
(``FreshnessProbe.tag`` before sending), and ``AckedSamples`` hears the call's request event: a sample
whose call was acknowledged whole is looked for from that moment on.
"""

from __future__ import annotations

import time
from typing import Any

from grpc_user.locust.counts.record import CallRecord
from grpc_user.locust.freshness.probe import FreshnessProbe


class AckedSamples:
    """Listener of Locust's request event for one probe (one test): hands it the samples of acknowledged calls."""

    def __init__(self, probe: FreshnessProbe) -> None:
        self.probe = probe

    def on_request(self, request_type: str, name: str, response_time: float, response_length: int, response: Any = None,
                   context: Any = None, exception: Any = None, start_time: float | None = None, url: str | None = None,
                   call: CallRecord | None = None, **_: Any) -> None:  # fmt: skip
        """A call that carried a sample and whose every log was acknowledged: the sample is pending from now
        (``time.monotonic``); a call not acknowledged whole tells nothing about when its sample was stored."""
        if call is not None and call.sample is not None and call.acked == call.sent:
            self.probe.acked(call.sample, time.monotonic())
