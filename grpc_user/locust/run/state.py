"""Per-environment state of the suite: settings, log counters, request budget, shared channels."""

from __future__ import annotations

import itertools
import weakref
from dataclasses import dataclass, field
from typing import Any

from gevent.event import Event

from grpc_user.locust.counts.arrivals import ArrivalCounter
from grpc_user.locust.counts.latency import LatencySplit, ServiceTime
from grpc_user.locust.counts.logs import LogCounter
from grpc_user.locust.counts.peers import PeerCounter
from grpc_user.locust.counts.phases import PhaseCounts
from grpc_user.locust.open_model.clock import ArrivalClock, LiveRate
from grpc_user.locust.run.budget import BudgetPool, RequestBudget
from grpc_user.locust.settings.action_plan import ActionPlan
from grpc_user.locust.settings.suite import SuiteSettings
from grpc_user.locust.transport.bridge import Transports
from grpc_user.security import Security


@dataclass
class SuiteRun:
    """What the suite keeps for one Locust Environment (one per process)."""

    settings: SuiteSettings = field(default_factory=SuiteSettings)
    counter: LogCounter = field(default_factory=LogCounter)
    peers: PeerCounter = field(default_factory=PeerCounter)
    latency: LatencySplit = field(default_factory=LatencySplit)
    service_time: ServiceTime = field(default_factory=ServiceTime)
    arrivals: ArrivalClock | None = None
    arrival_counts: ArrivalCounter = field(default_factory=ArrivalCounter)
    arrivals_history: Any = None
    live_rate: LiveRate | None = None
    capacity_greenlet: Any = None
    budget: RequestBudget = field(default_factory=RequestBudget)
    transports: Transports = field(default_factory=Transports)
    user_numbers: itertools.count = field(default_factory=itertools.count)
    startup_security: Security | None = None
    startup_actions: ActionPlan | None = None
    phases: PhaseCounts = field(default_factory=PhaseCounts)
    phase_audits: list[dict[str, Any]] = field(default_factory=list)
    startup_host: str = ""
    initialized: bool = False
    used_run_ids: set[str] = field(default_factory=set)
    overridden_wait_times: set[str] = field(default_factory=set)
    started_at: float = 0.0
    # The run time of the /swarm form starting a test ((None,): none), until that test's test_start takes it.
    swarm_run_time: tuple[float | None] | None = None
    stopping_at: float = 0.0
    stopped_at: float = 0.0
    audit: dict[str, Any] | None = None
    audit_greenlet: Any = None
    audit_interrupted_by: str = ""  # the signal that cut the audit short ('' while none did)
    audit_interrupt: Event = field(default_factory=Event)  # set with it: the audit's sleep ends at once
    test_stop_greenlet: Any = None  # the greenlet handling this test's test_stop (None before it fires)
    test_stopped: Event = field(default_factory=Event)  # set once that test_stop is handled
    quitting_greenlet: Any = None  # the greenlet running Locust's shutdown (None before it starts)
    interrupt_sent: bool = False  # the first Ctrl-C went to Locust's main greenlet
    master_lost: str = ""  # a worker: why it has no master any more ('' while it has one)
    preflight_waiter: Any = None  # the greenlet waiting for the preflight's answer (None while no preflight runs)
    preflight_cut_by: str = ""  # the stop signal that cut the preflight short ('' while none did)
    preflight_cut: Event = field(default_factory=Event)  # set with it: the wait for the answer ends at once
    history: Any = None
    history_greenlet: Any = None
    budget_pool: BudgetPool | None = None
    final_counts_from: set[str] = field(default_factory=set)
    workers_without_final_counts: list[str] = field(default_factory=list)
    workers: int = 0
    freshness: Any = None
    freshness_figures: dict[str, Any] | None = None
    call_listeners: list[Any] = field(default_factory=list)  # this test's listeners of the request event
    sampler: Any = None  # the freshness probe's SampledCalls, the client's sampler (None: no probe)


_runs: weakref.WeakKeyDictionary[Any, SuiteRun] = weakref.WeakKeyDictionary()


def suite_run(environment: Any) -> SuiteRun:
    """The SuiteRun of a Locust Environment, created on first use."""
    run = _runs.get(environment)
    if run is None:
        run = _runs[environment] = SuiteRun()
    return run


def all_environments() -> list[tuple[Any, SuiteRun]]:
    """Every live (Environment, SuiteRun) pair."""
    return list(_runs.items())


def all_runs() -> list[SuiteRun]:
    """Every live SuiteRun (one per Environment; one in a Locust process)."""
    return list(_runs.values())
