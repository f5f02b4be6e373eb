"""The probe over a test's life: started at ``test_start``, handed over by a worker at its stop, finished by the
master (or the single process) when the audit ends, then its figures and files.

Each process that runs users probes its own samples at its share of ``--freshness-sample-rate`` (its users over
all the test's users, like the open model's rate); the master adds the workers' histograms and, after the stop,
keeps looking for the samples they handed over.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Protocol

import gevent
from locust.runners import WORKER_REPORT_INTERVAL, MasterRunner, WorkerRunner

from grpc_user.locust.freshness.files import figures, latency_figures
from grpc_user.locust.freshness.learnt import shared_learning
from grpc_user.locust.freshness.poller import PollPacing, poll_once, poll_until_closed
from grpc_user.locust.freshness.probe import FreshnessProbe
from grpc_user.locust.freshness.windows import QueryBudget, SamplingWindows
from grpc_user.locust.run.known_end import known_test_end
from grpc_user.locust.run.target import run_target, target_call
from grpc_user.run_files import FreshnessHistory, write_freshness, write_freshness_info
from grpc_user.run_files.freshness_words import can_raise

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
    worker = ""
    if isinstance(runner, MasterRunner):
        share = lambda: 0.0  # noqa: E731
    else:
        worker = f"w{runner.worker_index}" if isinstance(runner, WorkerRunner) else ""
        share = lambda: min(runner.user_count / max(total_users(), 1), 1.0)  # noqa: E731
    probe = FreshnessProbe(settings.run_id, settings.freshness_sample_rate, settings.freshness_poll_interval, share,
                           worker, query_share=settings.freshness_query_share, sampling=False)  # fmt: skip
    if settings.capacity is not None:  # a sample pending longer than the freshness SLO makes its step late
        probe.late_after = settings.capacity.slo_visibility_p95_ms / 1000
    history = FreshnessHistory(prefix) if prefix and not isinstance(runner, WorkerRunner) else None
    # A second's row (of the samples acknowledged in it) is written once complete: when it is over and none of its
    # samples is still looked for, on a master once its workers have reported it.
    lag = WORKER_REPORT_INTERVAL + 2 if isinstance(runner, MasterRunner) else 0
    on_interval = (
        (lambda: _append_interval(history, probe, probe.complete_before(time.time() - lag)))
        if history is not None
        else None
    )
    probe.history = history
    # The test's end as the master (or this single process) knows it, a worker from the master's options: -t, a web
    # UI form's run time, or a new one a /swarm sets while it runs.
    budget = QueryBudget(probe.query_share / 100, lambda: run.counter.run_requests, time.time(),
                         lambda: run.stopped_at, lambda: known_test_end(environment))  # fmt: skip
    # Workers learn the store's pace once for the test (freshness.learnt): one learns, the others are told.
    # A window whose samples would be visible after the looking ends (--audit-timeout after the stop) does not open.
    shared = shared_learning(environment, probe.run_id)
    windows = SamplingWindows(
        budget, settings.freshness_poll_interval, shared=shared, after_stop=settings.audit_timeout
    )
    pacing = PollPacing(settings.freshness_poll_interval, budget, probe.longest_poll_gap(), windows)
    probe.share_spent = lambda: budget.spendable(probe.queries) < 1 and math.isinf(pacing.longest)
    probe.poller = gevent.spawn(poll_until_closed, probe, _query_call(environment, run), gevent.sleep, pacing,
                                on_interval)  # fmt: skip
    run.freshness = probe


def _query_call(environment: Any, run: Any) -> Any:
    """The probe's QueryLog over the process's shared channel (the first of ``--grpc-connections``, balanced as
    ``--grpc-lb`` says, as the users' and the audit's), opened at its first use (after any fork)."""
    timeout = max(run.settings.grpc_timeout, PROBE_QUERY_TIMEOUT_SECONDS)
    opened: list[Any] = []

    def call(path: str, payload: bytes) -> bytes:
        if not opened:
            opened.append(target_call(run, run_target(environment), timeout))
        return opened[0](path, payload)

    return call


def hand_off(run: Any) -> dict[str, list[list[Any]]]:
    """A worker at its stop: stop probing and give its pending and held samples to the master
    (``FreshnessProbe.hand_off``)."""
    probe = run.freshness
    if probe is None:
        return {}
    items = probe.hand_off(time.monotonic())
    _stop_poller(probe)
    return items


class AuditVerdict(Protocol):
    """What the freshness probe reads of the delivery audit's result (``audit.delivery.AuditResult``): its
    ``status`` (``skipped`` without an audit), ``detail`` (why, in the words of its line), ``settle_seconds`` (how
    long it waited), ``barriers`` (the logs it wrote after the stop), ``service_stored`` (the logs the service stored
    while it waited, every run's; None when not counted)."""

    status: str
    detail: str
    settle_seconds: float
    barriers: int
    service_stored: int | None


def finish_probe(environment: Any, run: Any, probe: FreshnessProbe | None, prefix: str,
                 audit: AuditVerdict | None = None) -> dict[str, Any] | None:  # fmt: skip
    """After the audit (master or single process): a last sweep, the samples never visible or unknown, the figures,
    the files.

    ``audit``: the audit's result (None: no audit ran, as ``skipped``). Samples still pending are never visible when
    the service was seen to settle (ok, in_doubt, lost) or to store nothing at all while the audit waited (an
    unsettled audit that saw no log stored, not even its barrier), unknown, with the audit's own reason, when the
    looking was cut short (``pending_because``). Without an audit the probe keeps looking under the audit's own
    settle rule (``settle_without_audit``).
    """
    if probe is None:
        return None
    if audit is None or audit.status == "skipped":
        unknown_because, never_because = settle_without_audit(run, probe), ""
    else:
        unknown_because, never_because = pending_because(audit, run.audit_interrupted_by)
    _stop_poller(probe)
    if not probe.closed and not unknown_because:  # the last sweep: every sample still pending, once
        poll_once(probe, _query_call(environment, run), everything=True)
    if probe.closed and probe.error and not unknown_because:
        unknown_because = f"the probe stopped: {probe.error}"
    probe.finish(unknown_because if probe.pending_count() else "", never_because)
    probe.lose(run.workers_without_final_counts)
    if probe.history is not None:
        _append_interval(probe.history, probe)
        probe.history.close()
    data = figures(probe, run.settings.freshness_sample_rate, "done", phases_ran=phases_ran(run),
                   test_span=(run.started_at, run.stopped_at))  # fmt: skip
    if prefix:
        write_freshness(prefix, data)
        write_freshness_info(prefix, data)
    return data


def phases_ran(run: Any) -> dict[int, int]:
    """With ``--action``: each phase that ran (0, each action's once it started, any a log was sent in) -> the logs
    acknowledged in it, so that a phase without a sample still has its row; {} without actions."""
    if not run.settings.actions.actions:
        return {}
    phases = run.phases
    return {phase: phases.by_phase[phase].acked if phase in phases.by_phase else 0
            for phase in sorted(set(range(phases.current + 1)) | set(phases.by_phase))}  # fmt: skip


def _append_interval(history: FreshnessHistory, probe: FreshnessProbe, before: float = float("inf")) -> None:
    """The samples acknowledged in each second before ``before`` (epoch s) and found visible, not written yet: a row
    per second and name."""
    for second, found in probe.take_intervals(before).items():
        history.append(second, {name: latency_figures(latencies) for name, latencies in found.items()})


def pending_because(audit: AuditVerdict, interrupted_by: str = "") -> tuple[str, str]:
    """Why the samples still pending when the audit ended are unknown, or never visible, in words that agree with
    the audit's: ``(unknown_because, never_visible_because)``, at most one of them not ''; both '' for the other
    verdicts (ok, in_doubt, lost: the service stored the audit's barrier or every log; incomplete).

    An unsettled audit that saw the service store nothing at all while it waited (``service_stored`` 0), not even
    its barrier, leaves them never visible, not "not looked for long enough": nothing was being stored, and the
    audit looked its whole ``--audit-timeout`` (a flush period longer than that is the audit's own caveat, said in
    its line). Any other unsettled audit (still storing, a barrier refused or not stored by every server) leaves
    them unknown for the audit's own reason (``detail``); so does one cut short (``interrupted_by``: the signal) or
    one that could not count."""
    if interrupted_by or audit.status == "interrupted":
        return f"the audit was cut short by {interrupted_by or audit.detail or 'a signal'}", ""
    if audit.status == "error":
        return f"the audit could not count the stored logs{f': {audit.detail}' if audit.detail else ''}", ""
    if audit.status != "unsettled":
        return "", ""
    if audit.service_stored == 0:
        barrier = (f", not even the log{'s' if audit.barriers > 1 else ''} it wrote after the stop"
                   if audit.barriers else "")  # fmt: skip
        return "", f"the service stored nothing in the {audit.settle_seconds:,.1f} s the audit waited{barrier}"
    return f"the audit gave up unsettled: {audit.detail or 'the service was still storing'}", ""


def settle_without_audit(run: Any, probe: FreshnessProbe) -> str:
    """``--no-audit``: keep looking until nothing is pending, or no sample became visible for ``--audit-settle``
    s, and at most ``--audit-timeout`` s; a failed query or a stop signal ends it at once. Returns why the samples
    left are unknown ('' when none is left): never "never visible", as no barrier proves the service will not store
    them later (a flush period longer than the settle time: it called 82 samples of a 30 s flush never visible)."""
    settings = run.settings
    start = last_found = time.monotonic()
    visible, failures = probe.histograms.combined().count, probe.query_failures
    visible_at_stop = visible
    while probe.pending_count() and not probe.closed:
        now = time.monotonic()
        if run.audit_interrupted_by:
            return f"the wait for them was cut short by {run.audit_interrupted_by}"
        if probe.query_failures > failures:
            return f"the probe's QueryLog failed after the stop: {probe.error}"
        if probe.share_spent():  # no poll can look for them any more: waiting would only blame the service
            return share_spent_because(probe)
        if now - start >= settings.audit_timeout:
            others = " while others became visible" if probe.histograms.combined().count > visible_at_stop else ""
            return f"still not visible after --audit-timeout {settings.audit_timeout:g} s{others}"
        found = probe.histograms.combined().count
        if found > visible:
            visible, last_found = found, now
        elif now - last_found >= settings.audit_settle:
            return (f"none became visible for --audit-settle {settings.audit_settle:g} s, and without the audit "
                    "(--no-audit) nothing proves they will not be stored later")  # fmt: skip
        run.audit_interrupt.wait(probe.poll_interval)
    return ""


def share_spent_because(probe: FreshnessProbe) -> str:
    """Why the samples pending are unknown when the query share was spent before the stop (no poll can look for them
    after it), and what to do: raise the share to follow them, when the service was seen storing a sample. When none
    ever was (``found_any``), nothing the probe saw tells a service that stores nothing from one that stores them
    later (a backlog ahead of them, a long flush period): the words say so and that the audit tells which, not to
    raise the share (a service that stores nothing got "raise it to follow them" with 0 of 160 samples visible)."""
    spent = (f"--freshness-query-share {probe.query_share:g}% of the calls was spent, so nothing looked for them after "
             "the stop")  # fmt: skip
    if not probe.found_any():
        return (f"{spent}, and no sample had become visible before it: the service may store nothing, or store them "
                "only later (a backlog ahead of them, a long flush period); the audit (off: --no-audit) tells which, "
                "where a larger share would only look longer")  # fmt: skip
    return spent + ("; raise it to follow them" if can_raise(probe.query_share) else " (its maximum)")


def _stop_poller(probe: FreshnessProbe) -> None:
    poller, probe.poller = probe.poller, None
    if poller is not None and poller is not gevent.getcurrent():
        poller.kill(block=True)
