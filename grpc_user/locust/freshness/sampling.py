"""How the freshness probe's samples are taken from calls: ``SampledCalls`` is the client's sampler. It tags
a log of a call that is due (``FreshnessProbe.tag``, before the call is serialized) and, while such a call is
in flight, listens to Locust's request event: a sample whose call was acknowledged whole is looked for from
that moment on. A few calls a second carry a sample, so the listener is subscribed only while one is in
flight: the other calls do not pay for it. While the probe samples no call (its first seconds, between its
sampling windows), one call a second is due all the same, to be heard, not tagged (``FreshnessProbe.watch_due``):
whether the service acknowledges calls at all, so that a service that stopped is named as the reason no sample was
taken. The check each call makes is the one it made before: ``due``.
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
        self._watching = False

    @property
    def due(self) -> float:
        """When the next call is due (``time.monotonic`` s): for a sample, or, while none is sampled, to be heard."""
        return self.probe.due

    def tag(self, rpc: str, name: str, request: Any, now: float) -> Sample | None:
        """Tag a log of ``request`` (``FreshnessProbe.tag``); with a sample, listen until its call's request event.
        While the probe samples no call, the call is not tagged: the outcome of the next call is heard
        (``FreshnessProbe.heard``)."""
        probe = self.probe
        heard = not probe.sampling and not probe.closed
        sample = probe.tag(rpc, name, request, now)
        if sample is not None:
            self._listen()
            self._in_flight += 1
        elif heard:
            self._watching = True
            self._listen()
        return sample

    def _listen(self) -> None:
        if not self._listening:
            self._event.add_listener(self.on_request)
            self._listening = True

    def untag(self, sample: Sample) -> None:
        """Take the tags off the request object (they are in the serialized payload)."""
        self.probe.untag(sample)

    def on_request(self, request_type: str, name: str, response_time: float, response_length: int, response: Any = None,
                   context: Any = None, exception: Any = None, start_time: float | None = None, url: str | None = None,
                   call: CallRecord | None = None, **_: Any) -> None:  # fmt: skip
        """A call that carried a sample: when every log of it was acknowledged, the sample is pending from now
        (``time.monotonic``); a call not acknowledged whole tells nothing about when its sample was stored, and is
        counted (``FreshnessProbe.not_acknowledged``). While a call is to be heard, the first that carried logs
        says whether the service acknowledges them (``FreshnessProbe.heard``)."""
        if call is None:
            return
        if call.sample is None:
            if self._watching and call.sent:
                self._watching = False
                self.probe.heard(call.acked == call.sent, time.monotonic(), call.cause)
                if self._in_flight <= 0:
                    self.stop()
            return
        if call.acked == call.sent:
            self.probe.acked(call.sample, time.monotonic())
        else:
            self.probe.not_acknowledged(time.monotonic(), call.cause)
        self._in_flight -= 1
        if self._in_flight <= 0 and not self._watching:
            self.stop()

    def stop(self) -> None:
        """Stop listening (no sampled call in flight nor one to hear, or the next test has a sampler of its own)."""
        if self._listening:
            self._event.remove_listener(self.on_request)
            self._listening = False
        self._in_flight = 0
        self._watching = False
