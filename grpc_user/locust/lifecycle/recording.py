"""Which listeners record the calls of a test: each subscribes to the Environment's request event and owns its
figures (``grpc_user.locust.counts.record`` is what they read).

Log counts and the latency split listen always; service time only in the open model (``--arrival-rate``,
``--capacity-search``), phase counts only with ``--action``, the freshness probe's sampler only while a call
carrying a sample is in flight: a listener a call does not need costs it nothing.
"""

from __future__ import annotations

from typing import Any

from grpc_user.locust.freshness.sampling import SampledCalls


def listen_to_calls(environment: Any, run: Any) -> None:
    """Subscribe this test's call listeners to ``environment.events.request``, in place of the previous test's, and
    give the test's freshness probe (``run.freshness``, None with ``--no-freshness``) its sampler (``run.sampler``)."""
    settings = run.settings
    listeners = [run.counter.on_request, run.latency.on_request]
    if settings.arrival_rate is not None or settings.capacity is not None:
        listeners.append(run.service_time.on_request)
    if settings.actions.actions:
        listeners.append(run.phases.on_request)
    request = environment.events.request
    if run.sampler is not None:
        run.sampler.stop()
    run.sampler = SampledCalls(run.freshness, request) if run.freshness is not None else None
    for listener in run.call_listeners:
        request.remove_listener(listener)
    for listener in listeners:
        request.add_listener(listener)
    run.call_listeners = listeners
