"""How the freshness probe's samples are taken from calls: ``SampledCalls`` is the client's sampler. It tags
a log of a call that is due (``FreshnessProbe.tag``, before the call is serialized) and, while such a call is
in flight, listens to Locust's request event: a sample whose call was acknowledged whole is looked for from
that moment on. A few calls a second carry a sample, so the listener is subscribed only while one is in
flight: the other calls do not pay for it.
"""

from __future__ import annotations

import time
from typing import Any

from grpc_user.locust.counts.record import CallRecord
from grpc_user.locust.freshness.pending import Sample
from grpc_user.locust.freshness.probe import FreshnessProbe


class SampledCalls:
    """The sampler of one probe (one test) on ``request_event`` (the Environment's ``events.request``)."""

    def __init__(self, probe: FreshnessProbe, request_event: Any) -> None:
        self.probe = probe
        self._event = request_event
        self._in_flight = 0
        self._listening = False

    @property
    def due(self) -> float:
        """When the next call is due for sampling (``time.monotonic`` s)."""
        return self.probe.due

    def tag(self, rpc: str, name: str, request: Any, now: float) -> Sample | None:
        """Tag a log of ``request`` (``FreshnessProbe.tag``); with a sample, listen until its call's request event."""
        sample = self.probe.tag(rpc, name, request, now)
        if sample is not None:
            if not self._listening:
                self._event.add_listener(self.on_request)
                self._listening = True
            self._in_flight += 1
        return sample

    def untag(self, sample: Sample) -> None:
        """Take the tags off the request object (they are in the serialized payload)."""
        self.probe.untag(sample)

    def on_request(self, request_type: str, name: str, response_time: float, response_length: int, response: Any = None,
                   context: Any = None, exception: Any = None, start_time: float | None = None, url: str | None = None,
                   call: CallRecord | None = None, **_: Any) -> None:  # fmt: skip
        """A call that carried a sample: when every log of it was acknowledged, the sample is pending from now
        (``time.monotonic``); a call not acknowledged whole tells nothing about when its sample was stored, and is
        counted (``FreshnessProbe.not_acknowledged``)."""
        if call is None or call.sample is None:
            return
        if call.acked == call.sent:
            self.probe.acked(call.sample, time.monotonic())
        else:
            self.probe.not_acknowledged(time.monotonic(), call.cause)
        self._in_flight -= 1
        if self._in_flight <= 0:
            self.stop()

    def stop(self) -> None:
        """Stop listening (no sampled call in flight, or the next test has a sampler of its own)."""
        if self._listening:
            self._event.remove_listener(self.on_request)
            self._listening = False
        self._in_flight = 0
