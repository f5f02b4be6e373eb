"""The probe over a test's life: started at ``test_start``, handed over by a worker at its stop, finished by the
master (or the single process) when the audit ends, then its figures and files.

Each process that runs users probes its own samples at its share of ``--freshness-sample-rate`` (its users over
all the test's users, like the open model's rate); the master adds the workers' histograms and, after the stop,
keeps looking for the samples they handed over.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import gevent
from locust.runners import MasterRunner, WorkerRunner

from grpc_user.locust.freshness.files import figures, latency_figures
from grpc_user.locust.freshness.poller import poll_once, poll_until_closed
from grpc_user.locust.freshness.probe import FreshnessProbe
from grpc_user.run_files import FreshnessHistory, write_freshness, write_freshness_info
from grpc_user.settings import default_target
from grpc_user.target import parse_target

logger = logging.getLogger(__name__)
# The probe's queries wait this long at least: a loaded service may answer a query slowly.
PROBE_QUERY_TIMEOUT_SECONDS = 10.0


def start_probe(environment: Any, run: Any, prefix: str, total_users: Any) -> None:
    """A new test: a new probe (none with ``--no-freshness``) and its polling greenlet.

    ``total_users``: a callable giving the test's users in total (a worker's share is its users over them).
    """
    settings = run.settings
    run.freshness, run.freshness_figures = None, None
    if not settings.freshness:
        return
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        token, share = "", lambda: 0.0
    else:
        suffix = f".w{runner.worker_index}" if isinstance(runner, WorkerRunner) else ""
        token = f"{settings.run_id}{suffix}"
        share = lambda: min(runner.user_count / max(total_users(), 1), 1.0)  # noqa: E731
    probe = FreshnessProbe(token, settings.freshness_sample_rate, settings.freshness_poll_interval, share)
    if settings.capacity is not None:  # a sample pending longer than the freshness SLO makes its step late
        probe.late_after = settings.capacity.slo_visibility_p95_ms / 1000
    history = FreshnessHistory(prefix) if prefix and not isinstance(runner, WorkerRunner) else None
    on_interval = (lambda: _append_interval(history, probe)) if history is not None else None
    probe.history = history
    probe.poller = gevent.spawn(poll_until_closed, probe, _query_call(environment, run), gevent.sleep, on_interval)
    run.freshness = probe


def _query_call(environment: Any, run: Any) -> Any:
    """The probe's QueryLog over the process's shared transport, opened at its first use (after any fork)."""
    timeout = max(run.settings.grpc_timeout, PROBE_QUERY_TIMEOUT_SECONDS)
    security = run.settings.security
    transports: list[Any] = []

    def call(path: str, payload: bytes) -> bytes:
        if not transports:
            transports.append(run.transports.shared(parse_target(environment.host or default_target()), security))
        return transports[0].unary(path, payload, timeout)

    return call


def hand_off(run: Any) -> list[list[Any]]:
    """A worker at its stop: stop probing and give its pending samples to the master."""
    probe = run.freshness
    if probe is None:
        return []
    items = probe.hand_off(time.monotonic())
    _stop_poller(probe)
    return items


def finish_probe(environment: Any, run: Any, probe: FreshnessProbe | None, prefix: str) -> dict[str, Any] | None:
    """After the audit (master or single process): a last poll, the samples never visible, the figures, the files.

    Without an audit the probe keeps looking for at most ``--audit-timeout`` s.
    """
    if probe is None:
        return None
    settings = run.settings
    if not settings.audit:
        deadline = time.monotonic() + settings.audit_timeout
        while probe.pending_count() and not probe.closed and time.monotonic() < deadline:
            gevent.sleep(probe.poll_interval)
    _stop_poller(probe)
    if not probe.closed:
        poll_once(probe, _query_call(environment, run))
    probe.finish()
    if probe.history is not None:
        _append_interval(probe.history, probe)
        probe.history.close()
    data = figures(probe, settings.freshness_sample_rate, "done")
    if prefix:
        write_freshness(prefix, data)
        write_freshness_info(prefix, data)
    return data


def _append_interval(history: FreshnessHistory, probe: FreshnessProbe) -> None:
    """The samples found visible since the last interval, a history row per name."""
    history.append({name: latency_figures(latencies) for name, latencies in probe.take_interval().items()})


def _stop_poller(probe: FreshnessProbe) -> None:
    poller, probe.poller = probe.poller, None
    if poller is not None and poller is not gevent.getcurrent():
        poller.kill(block=True)
