"""``--capacity-search``: find, by itself, the highest rate the service sustains, and what breaks above it.

The search runs in the master (or the single process) for the whole test. It offers the open model's
arrival rate step by step (a geometric ramp, then a bisection: ``grpc_user.locust.capacity.knee``), measures
each step's steady part (after a warm-up of a fifth of the step) and calls a step bad when any of
these breaks: failures above ``--slo-failure-rate`` (RESOURCE_EXHAUSTED and partial batches included),
p95 from the scheduled start above ``--slo-p95-ms``, acknowledged logs below 95% of those offered,
dropped arrivals, or the service falling behind in storing: its backlog (acknowledged minus stored,
sampled every quarter second) rises, its lowest point in the step's second half above the first
half's by more than a service storing 95% of its logs would fall behind, and by more than one
sampling interval's logs. The lowest points come right after flushes, so a periodic flush's sawtooth
is not falling behind. Then it writes ``capacity.json`` beside
the ``--csv`` files, says the answer in one line and ends the test, whose delivery audit covers
everything the search sent.

Step length: offered at r above a capacity C, a bounded queue of Q logs fills in Q / (r - C) seconds, so
RESOURCE_EXHAUSTED alone can take long to show; the backlog check sees a service falling behind in any
step longer than two of its flush periods. The default of 6 s suits flush periods up to 2 s; use
``--capacity-step 12`` for the real service's 5 s at low rates, and 15 s or more with workers, whose
stats reach the master every 3 s.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gevent
import grpc
from locust.runners import STATE_INIT, STATE_SPAWNING, MasterRunner, WorkerRunner

from grpc_user.histograms import Latencies
from grpc_user.locust.audit.stored_count import stored_count
from grpc_user.locust.capacity.knee import KneeSearch
from grpc_user.locust.counts.arrivals import DROP_CAUSES
from grpc_user.locust.run.exit_codes import FAILED
from grpc_user.locust.run.progress import WaitProgress
from grpc_user.locust.run.state import SuiteRun, suite_run
from grpc_user.locust.settings.suite import CapacitySettings
from grpc_user.run_files import write_capacity

logger = logging.getLogger(__name__)

KEEP_UP = 0.95
WARMUP_SHARE = 0.2
# After a bad step the service is offered nothing until it has stored that step's backlog, so that the next step is
# judged on its own (its logs would queue behind the backlog and look stale): as long as the backlog keeps falling, at
# most this long (s). A fixed 30 s left the next step ~100 logs behind a store of 50 logs/s (2 s of staleness).
MAX_RECOVERY_SECONDS = 300.0
# A backlog that has not fallen for this long (s) is not waited for any longer: a service that stores nothing more
# (three of the real service's 5 s flush periods).
STALLED_RECOVERY_SECONDS = 15.0
RECOVERY_POLL_SECONDS = 0.25
BACKLOG_POLL_SECONDS = 0.25
SPAWN_POLL_SECONDS = 0.25
STEP_MESSAGE = "grpc_user_capacity_step"


@dataclass
class Snapshot:
    """The test's cumulative figures at one moment."""

    at: float
    requests: int
    failures: int
    latency: Latencies
    errors: dict[str, int]
    sent: int
    acked: int
    dropped: dict[str, int]
    stored: int | None


@dataclass
class Step:
    """One step's offered and achieved figures and its verdict (``broken_by`` empty: good).
    ``waited_for_backlog_seconds``: how long the search offered nothing before this step, until the service had
    stored the previous bad step's backlog (0: no wait). The freshness probe's samples acknowledged in its steady
    part: ``visibility_taken`` in all, ``visibility_visible`` of them found, ``visibility_late`` still not visible
    after the freshness SLO, ``visibility_pending`` the rest: not found yet, acknowledged less than the SLO before the
    step's end (the four add up); ``visibility_p95_ms`` counts the late ones as later than any
    visible one (None: none visible, or more than 5% late)."""

    offered_rps: float
    batch_size: int | None
    seconds: float
    achieved_rps: float
    offered_logs_per_second: float
    acked_logs_per_second: float
    stored_logs_per_second: float | None
    backlog_start: int | None
    backlog_end: int | None
    backlog_rise: int | None
    p50_ms: float
    p95_ms: float
    p99_ms: float
    failure_rate: float
    failures: dict[str, int]
    dropped: int
    dropped_by_cause: dict[str, int] = field(default_factory=dict)
    visibility_p95_ms: float | None = None
    visibility_taken: int = 0
    visibility_visible: int = 0
    visibility_late: int = 0
    visibility_pending: int = 0
    waited_for_backlog_seconds: float = 0.0
    broken_by: list[dict[str, str]] = field(default_factory=list)

    @property
    def good(self) -> bool:
        """Nothing broke."""
        return not self.broken_by

    @property
    def made_calls(self) -> bool:
        """The step's steady part made at least one call (its rates and failure rate rest on something)."""
        return self.achieved_rps > 0

    @property
    def every_call_failed(self) -> bool:
        """The step's steady part made calls and every one failed."""
        return self.made_calls and self.failure_rate >= 1.0

    def line(self) -> str:
        """One log line for the step."""
        verdict = "good" if self.good else "bad: " + "; ".join(cause["words"] for cause in self.broken_by)
        waited = f" (after {self.waited_for_backlog_seconds:,.1f} s for the last bad step's backlog)" \
            if self.waited_for_backlog_seconds else ""  # fmt: skip
        return (
            f"capacity step {self.offered_rps:,.0f} calls/s offered{waited}: {self.achieved_rps:,.0f} achieved, "
            f"{self.acked_logs_per_second:,.0f} logs/s acknowledged, p95 {self.p95_ms:,.3f} ms: {verdict}"
        )


def register(events: Any) -> None:
    """Wire the search into Locust's events: at init, a worker takes its rates from the master's steps (the search
    itself starts at a test's start, from ``lifecycle``)."""

    def on_init(environment: Any, runner: Any, **_: Any) -> None:
        if isinstance(runner, WorkerRunner):
            register_worker_messages(environment)

    events.init.add_listener(on_init)


def register_worker_messages(environment: Any) -> None:
    """A worker takes each step's rate (and batch size) from the master."""

    def step(environment: Any, msg: Any, **_: Any) -> None:
        run = suite_run(environment)
        if msg.data.get("run_id") == run.settings.run_id:
            apply_locally(run, msg.data["rate"], msg.data.get("batch_size"))

    environment.runner.register_message(STEP_MESSAGE, step)


def apply_locally(run: SuiteRun, rate: float, batch_size: int | None) -> None:
    """Offer ``rate`` in total (this process takes its share) and use ``batch_size`` for batches."""
    if run.live_rate is not None:
        run.live_rate.value = rate
    if batch_size:
        run.settings = dataclasses.replace(run.settings, batch_size=batch_size)


def capacity_settings(run: SuiteRun) -> CapacitySettings:
    """The run's ``--capacity-search`` settings; RuntimeError in a run that does not search."""
    if run.settings.capacity is None:
        raise RuntimeError("no capacity search in this run (--capacity-search is off)")
    return run.settings.capacity


def search_capacity(environment: Any, run: SuiteRun, finish: Callable[[Any], None]) -> None:
    """The whole search (one per batch size of ``--batch-sizes``), its file and answer, then the end of the test."""
    capacity = capacity_settings(run)
    wait_for_spawning(environment, run)
    searches = []
    for batch_size in capacity.batch_sizes or (None,):
        knee, steps = KneeSearch(capacity.start, capacity.precision), []
        waited = 0.0
        while (rate := knee.next_rate()) is not None:
            step = run_step(environment, run, rate, batch_size)
            step.waited_for_backlog_seconds, waited = round(waited, 2), 0.0
            knee.record(rate, step.good)
            steps.append(step)
            logger.info("%s", step.line())
            if step.good:
                continue
            if not step.made_calls and not step.dropped:  # no verdict on the service: bisecting on it would mislead
                logger.warning("capacity search: the step at %s calls/s made no call (a distributed run's "
                               "workers report every 3 s: use --capacity-step 15 or more): the search stops",
                               f"{rate:,.0f}")  # fmt: skip
                break
            if not knee.good and step.every_call_failed:  # no lower rate will work: the service fails every call
                logger.warning("capacity search: every call failed at %s calls/s and no rate worked: the search "
                               "stops", f"{rate:,.0f}")  # fmt: skip
                break
            healthy = [done.backlog_end for done in steps if done.good and done.backlog_end is not None]
            waited = recover(environment, run, batch_size, max(min(healthy, default=0), 0), rate)
        searches.append((batch_size, knee, steps))
    result = capacity_result(environment, run, searches)
    # Failures in bad steps are what the search looks for: its answer sets the exit code (the audit may still fail).
    if result["max_sustainable_rps"] and result["breaking_cause"]["status"] != "NO_CALLS":
        logger.info("%s", result["answer"])
        environment.process_exit_code = 0
    else:
        logger.error("%s (exit code 1)", result["answer"])
        environment.process_exit_code = FAILED
    prefix = getattr(environment.parsed_options, "csv_prefix", None)
    if prefix:
        write_capacity(prefix, result)
    finish(environment)


def wait_for_spawning(environment: Any, run: SuiteRun) -> None:
    """Offer nothing until every user is spawned (Locust's ``spawning_complete``; in a distributed run, every
    worker's): a step run with a few of ``-u`` users offers only their share of its rate (the arrival clock's share
    is the users running out of ``-u``) and would judge the service on a fraction of it."""
    runner = environment.runner
    if runner.state not in (STATE_INIT, STATE_SPAWNING):
        return
    offer(environment, run, 0.0, None)
    # A master keeps the spawn rate it was started with; a local runner only has the command line's (or the web UI's).
    spawn_rate = float(getattr(runner, "spawn_rate", 0) or getattr(environment.parsed_options, "spawn_rate", 0) or 0)
    ramp = f", about {runner.target_user_count / spawn_rate:,.0f} s at -r {spawn_rate:g}" if spawn_rate else ""
    logger.info("capacity search: the first step waits for the users to spawn (%d of %d%s); raise -r to start "
                "sooner", runner.user_count, runner.target_user_count, ramp)  # fmt: skip
    while runner.state in (STATE_INIT, STATE_SPAWNING):
        gevent.sleep(SPAWN_POLL_SECONDS)


def offer(environment: Any, run: SuiteRun, rate: float, batch_size: int | None) -> None:
    """Offer ``rate`` in total from now on, in every process."""
    if isinstance(environment.runner, MasterRunner):
        message = {"run_id": run.settings.run_id, "rate": rate, "batch_size": batch_size}
        environment.runner.send_message(STEP_MESSAGE, message)
    apply_locally(run, rate, batch_size)


def recover(environment: Any, run: SuiteRun, batch_size: int | None, settled: int, rate: float) -> float:
    """After the bad step at ``rate`` calls/s, offer nothing until the backlog is back to ``settled`` (a good step's):
    a queue left full, or logs left unstored, by a bad step must not fail the next one, whose logs would queue behind
    them. Waits while the backlog falls, at most MAX_RECOVERY_SECONDS, and no longer once it has not fallen for
    STALLED_RECOVERY_SECONDS; says in one line how long it waited, or what it left. A backlog that cannot be counted
    is not waited for. Returns the seconds waited."""
    offer(environment, run, 0.0, batch_size)
    started = last_fall = time.monotonic()
    backlog, first, lowest = settled, None, None
    progress: WaitProgress | None = None
    try:
        while True:
            gevent.sleep(RECOVERY_POLL_SECONDS)
            try:
                backlog = run.counter.audit_acked - stored_count(environment, run)
            except (grpc.RpcError, RuntimeError) as error:
                logger.warning("capacity search: the backlog cannot be counted (%s): no wait for it to drain", error)
                return time.monotonic() - started
            now = time.monotonic()
            first = backlog if first is None else first
            if backlog <= settled or now - started >= MAX_RECOVERY_SECONDS:
                break
            if lowest is None or backlog < lowest:
                lowest, last_fall = backlog, now
            elif now - last_fall >= STALLED_RECOVERY_SECONDS:
                break
            if progress is None:
                progress = WaitProgress("capacity search: storing the backlog of a bad step", backlog - settled)
            progress.update(progress.total - (backlog - settled))
    finally:
        if progress is not None:
            progress.close()
    waited = time.monotonic() - started
    if backlog > settled:
        why = "(the most it waits)" if waited >= MAX_RECOVERY_SECONDS else \
            f"(it had stood still for {STALLED_RECOVERY_SECONDS:g} s)"  # fmt: skip
        logger.warning("capacity search: the service had not stored the backlog of the bad step at %s calls/s after "
                       "%.1f s %s: the next step starts %s logs behind, and its logs queue after them",
                       f"{rate:,.0f}", waited, why, f"{backlog:,}")  # fmt: skip
    elif first is not None and first > settled:
        logger.info("capacity search: waited %.1f s after the bad step at %s calls/s until the service had stored its "
                    "backlog (%s logs): the next step is judged on its own", waited, f"{rate:,.0f}",
                    f"{first:,}")  # fmt: skip
    return waited


def run_step(environment: Any, run: SuiteRun, rate: float, batch_size: int | None) -> Step:
    """Offer ``rate`` for one step; measure its steady part."""
    offer(environment, run, rate, batch_size)
    seconds = capacity_settings(run).step_seconds
    gevent.sleep(seconds * WARMUP_SHARE)
    if run.freshness is not None:
        run.freshness.start_window()
    before = snapshot(environment, run)
    backlogs = [before.acked - before.stored] if before.stored is not None else []
    end = before.at + seconds * (1 - WARMUP_SHARE)
    countable = before.stored is not None  # a count that failed is not asked again in this step
    while end - time.time() > BACKLOG_POLL_SECONDS:
        gevent.sleep(BACKLOG_POLL_SECONDS)
        if countable:
            try:
                backlogs.append(run.counter.audit_acked - stored_count(environment, run))
            except (grpc.RpcError, RuntimeError):
                countable = False
    gevent.sleep(max(end - time.time(), 0.0))
    after = snapshot(environment, run, count_stored=countable)
    if after.stored is not None:
        backlogs.append(after.acked - after.stored)
    step = judge(rate, batch_size, before, after, run, backlogs)
    if run.freshness is not None:
        p95, step.visibility_visible, step.visibility_late = run.freshness.window_p95_ms(time.monotonic())
        step.visibility_taken = run.freshness.window_taken
        step.visibility_pending = step.visibility_taken - step.visibility_visible - step.visibility_late
        step.visibility_p95_ms = None if p95 is None else round(p95, 1)
        step.broken_by = _broken(step, capacity_settings(run))
    return step


def snapshot(environment: Any, run: SuiteRun, count_stored: bool = True) -> Snapshot:
    """Locust's cumulative counts (workers' included), the suite's latency histograms (every call, all outcomes; a
    dropped arrival is no call), log and arrival counts and the stored count (``count_stored`` False: not asked)."""
    stats = environment.runner.stats
    stored: int | None = None
    try:
        stored = stored_count(environment, run) if count_stored else None
    except (grpc.RpcError, RuntimeError) as error:
        logger.warning("capacity search: could not count the stored logs (%s); the backlog check skips this step",
                       error)  # fmt: skip
    return Snapshot(
        at=time.time(),
        requests=stats.total.num_requests,
        failures=stats.total.num_failures,
        latency=run.latency.combined(),
        errors={str(error.error): error.occurrences for error in stats.errors.values()},
        sent=run.counter.run_sent,
        acked=run.counter.audit_acked,
        dropped=dict(run.arrival_counts.dropped),
        stored=stored,
    )


def judge(rate: float, batch_size: int | None, before: Snapshot, after: Snapshot, run: SuiteRun,
          backlogs: list[int]) -> Step:  # fmt: skip
    """A step's figures over its steady part, and what broke (if anything)."""
    slo = capacity_settings(run)
    seconds = max(after.at - before.at, 1e-9)
    dropped = {cause: count - before.dropped.get(cause, 0) for cause, count in after.dropped.items()
               if count > before.dropped.get(cause, 0)}  # fmt: skip
    calls = after.requests - before.requests
    failed = after.failures - before.failures
    latency = after.latency.since(before.latency)
    marks = latency.values_at((50.0, 95.0, 99.0)) if latency.count else {50.0: 0, 95.0: 0, 99.0: 0}
    p50, p95, p99 = (marks[share] / 1000 for share in (50.0, 95.0, 99.0))
    failures: dict[str, int] = {}
    for text, occurrences in after.errors.items():
        cause, new = text.split(":", 1)[0], occurrences - before.errors.get(text, 0)
        if new > 0:
            failures[cause] = failures.get(cause, 0) + new
    sent, acked = after.sent - before.sent, after.acked - before.acked
    offered_logs = rate * (sent / calls if calls else float(batch_size or 1))
    stored_rate = backlog_start = backlog_end = None
    if before.stored is not None and after.stored is not None:
        stored_rate = (after.stored - before.stored) / seconds
        backlog_start, backlog_end = before.acked - before.stored, after.acked - after.stored
    step = Step(
        offered_rps=rate, batch_size=batch_size, seconds=round(seconds, 2), achieved_rps=calls / seconds,
        offered_logs_per_second=offered_logs, acked_logs_per_second=acked / seconds,
        stored_logs_per_second=stored_rate, backlog_start=backlog_start, backlog_end=backlog_end,
        backlog_rise=_rise(backlogs),
        p50_ms=p50, p95_ms=p95, p99_ms=p99, failure_rate=failed / calls if calls else 0.0, failures=failures,
        dropped=sum(dropped.values()), dropped_by_cause=dropped,
    )  # fmt: skip
    step.broken_by = _broken(step, slo)
    return step


def _broken(step: Step, slo: CapacitySettings) -> list[dict[str, str]]:
    if not step.made_calls and not step.dropped:  # nothing was offered to the service: nothing of it to judge
        return [
            {
                "status": "NO_CALLS",
                "words": "no call was made in the step's steady part (no arrival fell due or none was dispatched): "
                "the rate was not tried, the service not judged",
            }
        ]
    broken = []
    if step.failure_rate > slo.slo_failure_rate:
        top = max(step.failures, key=lambda cause: step.failures[cause]) if step.failures else "no answer"
        broken.append(
            {
                "status": "FAILURE_RATE",
                "words": f"failures {step.failure_rate:.1%} > {slo.slo_failure_rate:.1%} (mostly {top})",
            }
        )
    if step.p95_ms > slo.slo_p95_ms:
        broken.append(
            {
                "status": "LATENCY_P95",
                "words": f"p95 {step.p95_ms:,.3f} ms > {slo.slo_p95_ms:g} ms (from the scheduled start)",
            }
        )
    slo_visibility, late, p95 = slo.slo_visibility_p95_ms, step.visibility_late, step.visibility_p95_ms
    if slo_visibility and (p95 is not None and p95 > slo_visibility or p95 is None and late):
        seen = f"p95 {p95:,.0f} ms" if p95 is not None else f"{late} of {step.visibility_taken} samples still " \
            "not visible"  # fmt: skip
        broken.append(
            {
                "status": "FRESHNESS",
                "words": f"freshness: logs visible to QueryLog too late ({seen} > {slo_visibility:g} ms after their "
                f"acknowledgement; {_visibility_counts(step, slo_visibility)})",
            }
        )
    elif slo_visibility and p95 is None:  # no sample of the step found, none late yet: the SLO is not shown to hold
        broken.append(
            {
                "status": "FRESHNESS",
                "words": "freshness unknown: no sampled log of the step became visible to QueryLog, so its "
                f"visibility p95 cannot be shown to be <= {slo_visibility:g} ms "
                f"({_visibility_counts(step, slo_visibility)})",
            }
        )
    if step.acked_logs_per_second < KEEP_UP * step.offered_logs_per_second:
        broken.append(
            {
                "status": "ACK_RATE",
                "words": f"{step.acked_logs_per_second:,.0f} logs/s acknowledged < 95% "
                f"of the {step.offered_logs_per_second:,.0f} offered",
            }
        )
    if step.dropped:
        causes = "; ".join(f"{count:,} because {DROP_CAUSES[cause]}" for cause, count in step.dropped_by_cause.items())
        broken.append({"status": "ARRIVALS_DROPPED", "words": f"{step.dropped:,} arrivals dropped: {causes}"})
    allowed = step.acked_logs_per_second * max((1 - KEEP_UP) * step.seconds / 2, BACKLOG_POLL_SECONDS)
    if step.backlog_rise is not None and step.backlog_rise > allowed:
        stored = step.stored_logs_per_second or 0.0
        broken.append(
            {
                "status": "BACKLOG_RISING",
                "words": f"the backlog rose by {step.backlog_rise:,} logs "
                f"({stored:,.0f} logs/s stored of {step.acked_logs_per_second:,.0f} acknowledged): "
                f"{step.backlog_start:,} -> {step.backlog_end:,}",
            }
        )
    return broken


def _visibility_counts(step: Step, slo_ms: float) -> str:
    """The step's samples in words, as capacity.json counts them, every part named:
    ``65 visible, 21 late, 10 pending (acknowledged less than 500 ms before the step's end) of 96 taken``."""
    pending = (f", {step.visibility_pending} pending (acknowledged less than {slo_ms:g} ms before the step's end)"
               if step.visibility_pending else "")  # fmt: skip
    return f"{step.visibility_visible} visible, {step.visibility_late} late{pending} of {step.visibility_taken} taken"


def _rise(backlogs: list[int]) -> int | None:
    """How much the backlog's lowest point rose from the first half of the samples to the second (None: too few)."""
    if len(backlogs) < 4:
        return None
    half = len(backlogs) // 2
    return min(backlogs[half:]) - min(backlogs[:half])


def capacity_result(environment: Any, run: SuiteRun, searches: list[tuple[int | None, KneeSearch, list[Step]]]) \
        -> dict[str, Any]:  # fmt: skip
    """``capacity.json``: the answer, its cause, the precision and every step, per batch size when swept."""
    per_size = [_one_search(size, knee, steps) for size, knee, steps in searches]
    best = max(per_size, key=lambda found: found["max_sustainable_logs_per_second"])
    options = environment.parsed_options
    target = environment.host or ""
    capacity = capacity_settings(run)
    return {
        "answer": _answer(target, best),
        "workload": os.path.splitext(os.path.basename(str(getattr(options, "locustfile", "") or "")))[0],
        "target": target,
        "run_id": run.settings.run_id,
        "max_in_flight": environment.runner.target_user_count,
        "step_seconds": capacity.step_seconds,
        "warmup_seconds": capacity.step_seconds * WARMUP_SHARE,
        "precision": capacity.precision,
        "slo": {
            "p95_ms": capacity.slo_p95_ms,
            "failure_rate": capacity.slo_failure_rate,
            "visibility_p95_ms": capacity.slo_visibility_p95_ms,
        },
        **{key: value for key, value in best.items() if key != "steps"},
        "steps": [step for found in per_size for step in found["steps"]],
        "batch_sizes": [{key: value for key, value in found.items() if key != "steps"} for found in per_size]
        if capacity.batch_sizes
        else [],
    }


def _answer(target: str, found: dict[str, Any]) -> str:
    """The search's answer in one line: the rate sustained, the precision, and what broke above it."""
    size = f" (batch of {found['batch_size']})" if found["batch_size"] else ""
    cause = found["breaking_cause"]
    if not found["max_sustainable_rps"]:
        return (
            f"Capacity of {target}{size}: no rate tried was sustained, down to {found['knee_between_rps'][1]:,.0f} "
            f"calls/s: {cause['words']} ({cause['status']})"
        )
    return (
        f"Capacity of {target}{size}: {found['max_sustainable_logs_per_second']:,.0f} logs/s sustained "
        f"({found['max_sustainable_rps']:,.0f} calls/s, knee within ±{found['achieved_precision']:.0%}); "
        f"{found['knee_between_rps'][1]:,.0f} calls/s broke it: {cause['words']} ({cause['status']})"
    )


def _one_search(batch_size: int | None, knee: KneeSearch, steps: list[Step]) -> dict[str, Any]:
    good = [step for step in steps if step.good and step.offered_rps == knee.good]
    bad = sorted((step for step in steps if not step.good), key=lambda step: step.offered_rps)
    logs_per_call = good[0].offered_logs_per_second / good[0].offered_rps if good else float(batch_size or 1)
    first_bad = bad[0].broken_by[0] if bad else {"status": "NONE", "words": "no step broke"}
    return {
        "batch_size": batch_size,
        "max_sustainable_rps": knee.good,
        "max_sustainable_logs_per_second": knee.good * logs_per_call,
        "knee_between_rps": [knee.good, None if not bad else bad[0].offered_rps],
        "achieved_precision": knee.achieved_precision() if bad and knee.good else None,
        "breaking_cause": first_bad,
        "steps": [{**dataclasses.asdict(step), "good": step.good} for step in steps],
    }
