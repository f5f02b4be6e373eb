"""The freshness probe of one process: which acknowledged logs it sampled, which QueryLog found them, when.

A sample is an acknowledged log tagged with metadata: ``freshness_probe=<run id>``, ``freshness_sample=<its
number>`` and, on a worker, ``freshness_worker=w<index>``. One QueryLog per poll (metadata filters on those tags,
a time window over the samples the poll looks for: ``pending``) returns every one of them the service has stored;
each found sample's visibility latency is the start of that query minus the moment its acknowledgement arrived
(``time.monotonic`` seconds). The true moment lies between the last query that looked for the sample without
finding it (or its acknowledgement) and this one: that gap, per found sample, is the figure's error bound, and the
largest of the run is reported (``max_poll_gap``), and the largest of each request name's and each ``--action``
phase's samples (``poll_gaps``, ``phase_poll_gaps``): each row of the figures states its own.

Figures are the suite's HDR histograms (``grpc_user.histograms``: µs, 1 µs..1 h, 3 significant digits)
keyed by (request name, ``OK``), over the whole run, per history interval, and not yet reported to the master
(workers send them encoded; the master adds them exactly). At a stop a worker hands its pending samples over, each
with its age, so the master keeps looking for them during the audit without comparing two clocks, and its held
samples, which the master counts only if no worker counted any. Samples still
pending at the end are *never visible* when the service was seen to settle (the audit's verdict, or the settle
rule without an audit), *unknown* when the looking was cut short (an interrupted or unsettled audit, a failed
query). A sample the last sweep finds with a bracket more than twice the bound the polls stated and than their
pacing by age (the poll interval plus a tenth of its visibility, an interval of slack) is unknown too, with the
reason (the query share was spent before it was visible, or the polls came less often than paced): never a figure
much coarser than the one stated.

Samples taken while ``holding`` (a window coarser than the poll interval, taken in case no finer one comes; the one
that learns the store's pace) are *held back*: not counted, their figures not recorded, until ``release_held``
records them all (no finer window recorded any) or ``drop_held`` leaves them out, counted in ``held_back``. Whole
windows are held back or dropped, never single samples by their own bracket: that would favour the slow ones.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError

from grpc_user import calls
from grpc_user.histograms import Latencies, LatencyHistograms
from grpc_user.locust.counts.phases import METADATA_KEY as PHASE_KEY
from grpc_user.locust.freshness.pending import (
    CURRENT_TIMES_LONGEST,
    MIN_CURRENT_SECONDS,
    RELATIVE_GAP,
    PendingSamples,
    Sample,
)
from grpc_user.pb import log_service_pb2 as pb
from grpc_user.results import OK
from grpc_user.run_files.freshness_words import CATCH_UP_SECONDS, can_raise

__all__ = ["FreshnessProbe", "Look", "Sample"]

PROBE_KEY = "freshness_probe"
WORKER_KEY = "freshness_worker"
SAMPLE_KEY = "freshness_sample"
REPORT_KEY = "grpc_freshness"
HANDOFF_KEY = "grpc_freshness_handoff"
QUERY_PATH = calls.METHOD_PATHS[calls.QUERY_LOG]
# A log whose own timestamp is this far from the clock is not sampled: the query window is built from it.
MAX_CLOCK_OFFSET_SECONDS = 60.0
# With a freshness SLO the probe polls at least this many times per SLO, whatever its query share: a step's
# visibility p95 is judged on figures late by at most a tenth of the SLO.
POLLS_PER_SLO = 10
WINDOW_MARGIN_SECONDS = 0.001
LIMIT_MARGIN = 100
MAX_LIMIT = 2**31 - 1
NAMED_SAMPLES = 20
# While the probe samples no call, one call's outcome is heard this often (s; ``sampling.SampledCalls``, ``heard``): a
# service killed between the probe's learning and its first sampling window was blamed on the test's stop, as no
# sampled call had failed.
WATCH_SECONDS = 1.0
# Bounded memory against a service that stores nothing: no new sample while this many are pending.
MAX_PENDING = 10_000
# The last sweep's figure of a sample is kept when its bracket is within this many times the bound the polls stated
# (or this many poll intervals and a tenth of its visibility, as the polls of a slow sample and those after the stop
# are paced): a sweep right after a poll brackets as a poll does.
COARSE_TIMES_BOUND = 2.0
# A QueryLog that fails this way will not work later either: the probe stops and says why.
FATAL_STATUSES = frozenset({"UNIMPLEMENTED", "UNAUTHENTICATED", "PERMISSION_DENIED", "INVALID_ARGUMENT"})


def _keep_largest(gaps: dict[str, float], key: str, gap: float) -> None:
    """``gaps[key]``: the largest poll gap (s) of a request name's or a phase's found samples so far."""
    if gap > gaps.get(key, -1.0):
        gaps[key] = gap


def _rfc3339(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, dt.UTC).isoformat()


def _epoch(text: str) -> float | None:
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


@dataclass(slots=True)
class Look:
    """One poll's QueryLog: its serialized request, the samples it looks for (current, overdue), whether it is
    the last sweep (every pending sample, once, at the end) and whether the query share was spent before it."""

    payload: bytes
    current: list[Sample]
    overdue: list[Sample]
    sweep: bool = False
    share_spent: bool = False


@dataclass
class FreshnessProbe:
    """Samples, pending samples, found samples' visibility latency (ms) per request name, the probe's own calls.

    ``run_id``: the test's run id (every sample's ``freshness_probe``); ``worker``: this worker's label (``w1``; ''
    in a single process and on the master). ``rate``: samples per second for this process at ``share() == 1`` (the
    test's total rate; a worker's share is its users over all users). ``poll_interval``: the shortest time between
    two queries, in s. ``query_share``: the most queries, in percent of the process's calls (``QueryBudget``);
    ``share_spent()``: whether the budget pays for no more poll (the last sweep's aside; False when none is set).
    ``sampling``: whether calls are sampled now (``SamplingWindows`` opens and closes it); ``due``: when (monotonic
    s) the next call is due, for a sample, or while none is sampled to be heard (``watch_due``, ``WATCH_SECONDS``
    apart, ``heard``); ``asked``: the samples the
    rate asked for so far (``rate x share()`` over the time the test ran), ``asked_unsampled``: those of them asked
    while the probe did not sample, ``sampling_limited``: whether the query share's rate took fewer (in windows),
    ``sampling_reserved_at``: how many seconds into the test sampling all the time stopped to keep the rest of the
    share for its samples after the stop (None: it did not; on a master the earliest worker's). ``max_poll_gap``: the
    largest gap (s) between a found sample's last look without it and the look that found it; ``poll_gaps``,
    ``phase_poll_gaps``: the same per request name and per phase; ``slowest_query``: the longest a query took to
    return (s; a poll waits for the one before it, so the polls came at least that far apart then);
    ``poll_lateness``: the longest a poll for current samples started after it was free to go, due and let go by the
    pacing (s: the query before it and the event loop; never the time the query share held it on purpose). ``holding``:
    whether the samples taken now are held back; ``held``: those acknowledged and not released or dropped yet,
    ``held_found``: those of them found, each with its visibility and bracket (s), ``held_longest``: the longest
    of those visibilities (s), ``held_back``: the samples dropped, never counted (on the master: every worker's),
    ``held_released``: whether the held samples were counted at the end (no finer window counted any: the figures
    are a coarse window's, the store-learning's flush cycle's). ``flush_cycle``: the store's flush cycle as learnt
    (s, 0 before or when it is slower than the load); ``precise_window_at``: when (s into the test) the first
    window of a store that keeps up opened, or before it did, when the share was last expected to pay for one at the
    poll interval (``SamplingWindows.precise_at``; infinite while not known; on a master the earliest of its workers'
    latest, ``remote_precise_at``); ``remote_unsettled``: on a master, each worker's ``unsettled_from`` as last
    reported (the history's rows wait for it).
    ``longest_found``: the longest visibility found (s), of the sample acknowledged at ``longest_found_at``
    (monotonic s); ``latest_found``: the visibility (s) of the latest acknowledged sample found, at
    ``latest_found_at`` (a backlog's growth); ``acked_first``, ``acked_last``: the acknowledgements (epoch s) of
    the first and last counted sample found (on a master over every worker's): the part of the run the figures
    cover; ``coarse_unknown``: the samples the last sweep found with a bracket
    wider than the bound stated (``coarse_gap``, s, the widest), unknown, never a coarser figure. ``window``,
    ``window_taken``: a capacity step's visible samples and the samples counted in it (here and at the workers), from
    ``start_window`` on. ``unacknowledged``: samples tagged on calls the service did not acknowledge whole (never
    taken; here and at the workers); ``failing_since``: seconds into the test of the first call heard not
    acknowledged after ``last_acked`` (s, that of the latest acknowledged; 0: none was), the last failing with
    ``failing_status`` (None: the latest call heard was acknowledged; on a master, when every worker that reported
    says so, the earliest): the calls heard are the sampled ones and, while none is sampled, one a second
    (``heard``). ``lost_workers``: on a master, each worker lost before its final report -> seconds into
    the test of its last report (``lose``); ``lost_pending``: the samples they still looked for (pending for good).
    """

    run_id: str
    rate: float
    poll_interval: float
    share: Callable[[], float] = lambda: 1.0
    worker: str = ""
    query_share: float = 1.5
    share_spent: Callable[[], bool] = lambda: False
    due: float = 0.0
    watch_due: float = 0.0
    pending: PendingSamples = field(default_factory=PendingSamples)
    histograms: LatencyHistograms = field(default_factory=LatencyHistograms)
    samples: dict[str, int] = field(default_factory=dict)
    phases: LatencyHistograms = field(default_factory=LatencyHistograms)
    phase_samples: dict[str, int] = field(default_factory=dict)
    never_visible: list[Sample] = field(default_factory=list)
    unknown: list[Sample] = field(default_factory=list)
    unknown_because: str = ""
    never_visible_because: str = ""
    coarse_unknown: int = 0
    coarse_gap: float = 0.0
    queries: int = 0
    query_failures: int = 0
    slowest_query: float = 0.0
    error: str = ""
    max_poll_gap: float = 0.0
    poll_gaps: dict[str, float] = field(default_factory=dict)
    phase_poll_gaps: dict[str, float] = field(default_factory=dict)
    sampling: bool = True
    asked: float = 0.0
    asked_unsampled: float = 0.0
    sampling_limited: bool = False
    sampling_reserved_at: float | None = None
    longest_found: float = 0.0
    longest_found_at: float = 0.0
    acked_first: float = math.inf
    acked_last: float = -math.inf
    latest_found: float = 0.0
    latest_found_at: float = 0.0
    remote_pending: dict[str, int] = field(default_factory=dict)
    closed: bool = False
    late_after: float = 0.0
    window: Latencies | None = None
    window_taken: int = 0
    remote_late: dict[str, dict[int, int]] = field(default_factory=dict)
    window_since: float = float("-inf")
    poller: Any = None
    history: Any = None
    holding: bool = False
    held: list[Sample] = field(default_factory=list)
    held_found: list[tuple[Sample, float, float]] = field(default_factory=list)
    held_longest: float = 0.0
    held_back: int = 0
    held_released: bool = False
    flush_cycle: float = 0.0
    precise_window_at: float = math.inf
    remote_precise_at: dict[str, float] = field(default_factory=dict)
    remote_unsettled: dict[str, float] = field(default_factory=dict)
    unacknowledged: int = 0
    failing_since: float | None = None
    failing_status: str = ""
    remote_failing: dict[str, float | None] = field(default_factory=dict)
    lost_workers: dict[str, float] = field(default_factory=dict)
    poll_lateness: float = 0.0
    lost_pending: int = 0
    remote_reported: dict[str, float] = field(default_factory=dict)
    _started: float = field(default_factory=time.monotonic)
    last_acked: float = 0.0
    _unreported_unacknowledged: int = 0
    _unreported_held_back: int = 0
    _dropped_below: int = 0
    _next_number: int = 0
    _found_total: int = 0
    _seen: int = 0
    _interval: dict[int, LatencyHistograms] = field(default_factory=dict)
    _unreported: dict[int, LatencyHistograms] = field(default_factory=dict)
    _written_through: int = 0
    _unreported_samples: dict[str, int] = field(default_factory=dict)
    _unreported_phases: LatencyHistograms = field(default_factory=LatencyHistograms)
    _unreported_phase_samples: dict[str, int] = field(default_factory=dict)
    _unreported_calls: list[int] = field(default_factory=lambda: [0, 0])
    _sampled_at: float = -math.inf
    _unreported_asked: float = 0.0
    _unreported_asked_unsampled: float = 0.0
    _unreported_by_ack: dict[int, Latencies] = field(default_factory=dict)
    _unreported_taken_by_ack: dict[int, int] = field(default_factory=dict)
    _wall_offset: float = field(default_factory=lambda: time.time() - time.monotonic())

    def __post_init__(self) -> None:
        if self.rate <= 0 or not self.sampling:  # a probe made closed samples no call until ``open_sampling``
            self.due = self._idle_due()

    @property
    def label(self) -> str:
        """This process's probe in names and logs: the run id, and the worker on a worker (``run.w1``)."""
        return f"{self.run_id}.{self.worker}" if self.worker else self.run_id

    # Sampling, on the calling user's greenlet.

    def tag(self, rpc: str, name: str, request: Any, now: float) -> Sample | None:
        """Tag one entry of a WriteLog or BatchWriteLog request due for sampling (``now >= due``); None if none fits.
        The samples due since the last one, up to ``CATCH_UP_SECONDS`` of them, stay due: calls that come in bursts
        give the rate asked for.

        The caller serializes the request, then calls ``untag``: the request object is left as it was. While the
        probe samples no call, a call is due only to be heard (``watch_due``): it is not tagged, and the next one is
        due ``WATCH_SECONDS`` later.
        """
        if not self.sampling:
            self.due = self.watch_due = now + WATCH_SECONDS
            return None
        interval = self._interval_now()
        if self.due == float("inf") or self._sampled_at == -math.inf:  # the first sample owes nothing
            self._sampled_at = now
        else:
            self._sampled_at = max(self.due, now - max(interval, CATCH_UP_SECONDS))
        self.due = self._sampled_at + interval
        entries = [request.log_entry] if rpc == calls.WRITE_LOG else request.log_entries
        if not entries or len(self.pending) >= MAX_PENDING:
            return None
        entry = entries[-1]
        if PROBE_KEY in entry.metadata:
            return None
        logged_at = _epoch(entry.timestamp) if entry.timestamp else None
        if logged_at is None or abs(logged_at - (self._wall_offset + now)) > MAX_CLOCK_OFFSET_SECONDS:
            return None
        number, self._next_number = self._next_number, self._next_number + 1
        entry.metadata[PROBE_KEY] = self.run_id
        entry.metadata[SAMPLE_KEY] = str(number)
        if self.worker:
            entry.metadata[WORKER_KEY] = self.worker
        phase = entry.metadata.get(PHASE_KEY, "")
        return Sample(self.worker, number, name, logged_at, entry=entry, phase=phase, held=self.holding, sent_at=now)

    def _interval_now(self) -> float:
        share = self.share() if self.sampling and not self.closed else 0.0
        return 1.0 / (self.rate * share) if share > 0 and self.rate > 0 else float("inf")

    def refresh_due(self) -> None:
        """The next sample's time from this process's share now (users spawn and stop; the poller calls this); the
        first sample is due at once."""
        if not self.sampling:
            self.due = self._idle_due()
        elif self._sampled_at > -math.inf:
            self.due = self._sampled_at + self._interval_now()

    def open_sampling(self) -> None:
        """Sample from now on, the first call at once (nothing owed before it)."""
        self.sampling, self._sampled_at, self.due = True, -math.inf, 0.0 if self.rate > 0 else float("inf")

    def close_sampling(self) -> None:
        """Sample no call until ``open_sampling`` (a call is still heard ``WATCH_SECONDS`` apart)."""
        self.sampling = False
        self.due = self._idle_due()

    def _idle_due(self) -> float:
        """When a call is due while the probe samples none: to be heard (``watch_due``), never once it is closed or
        asks for no sample."""
        return self.watch_due if not self.closed and self.rate > 0 else float("inf")

    def ask(self, seconds: float) -> None:
        """The test ran ``seconds`` more: the samples its rate asked for in them (this process's share)."""
        asked = self.rate * self.share() * seconds if not self.closed else 0.0
        self.asked += asked
        self._unreported_asked += asked
        if not self.sampling:
            self.asked_unsampled += asked
            self._unreported_asked_unsampled += asked

    def not_acknowledged(self, now: float, status: str) -> None:
        """A sampled call was not acknowledged whole at ``now`` (monotonic s), ``status`` its cause
        (``UNAVAILABLE``, ...): its sample is never taken, and until a call is acknowledged again the service is
        failing since now."""
        if self.closed:
            return
        self.unacknowledged += 1
        self._unreported_unacknowledged += 1
        self._failing(now, status)

    def heard(self, acknowledged: bool, now: float, status: str) -> None:
        """A call that carried no sample, heard at ``now`` (monotonic s) while the probe samples no call (one a
        second, ``sampling.SampledCalls``): ``acknowledged`` whole, or not with ``status`` its cause. Whether the
        service acknowledges calls at all, so that a service that fails between sampling windows is named as the
        reason no sample was taken (``failing_since``, ``last_acked``), not the test's stop."""
        if self.closed:
            return
        if acknowledged:
            self._acknowledged(now)
        else:
            self._failing(now, status)

    def _acknowledged(self, now: float) -> None:
        """A call was acknowledged at ``now``: the service is not failing, and this is the latest acknowledged."""
        self.failing_since, self.last_acked = None, now - self._started

    def _failing(self, now: float, status: str) -> None:
        """A call was not acknowledged at ``now``: the service is failing since the first such call after the last
        acknowledged one, the latest with ``status``."""
        self.failing_status = status
        if self.failing_since is None:
            self.failing_since = now - self._started

    @staticmethod
    def untag(sample: Sample) -> None:
        """Take the tags off the request object again (they are in the serialized payload)."""
        for key in (PROBE_KEY, SAMPLE_KEY, WORKER_KEY):
            sample.entry.metadata.pop(key, None)
        sample.entry = None

    def acked(self, sample: Sample, now: float) -> None:
        """The sample's call was acknowledged (every log of it) at ``now``: look for it from now on."""
        if self.closed:
            return
        sample.acked_at = now
        self._acknowledged(now)
        # Held, its call in flight when the held ones were dropped: dropped too, never looked for (polled alone, a
        # learning's straggler spent the share of a 10 s run's only window and kept it from opening)
        if sample.held and sample.number < self._dropped_below:
            self._hold_back(1)
            return
        self.pending.add(sample)
        self._seen += 1
        if sample.held:
            self.held.append(sample)
            return
        self._count(sample)
        if self.window is not None and now >= self.window_since:
            self.window_taken += 1
        if self.worker:  # the master's window counts it by the epoch second of its acknowledgement
            second = int(now + self._wall_offset)
            self._unreported_taken_by_ack[second] = self._unreported_taken_by_ack.get(second, 0) + 1

    def _count(self, sample: Sample) -> None:
        for counts in (self.samples, self._unreported_samples):
            counts[sample.name] = counts.get(sample.name, 0) + 1
        if sample.phase:
            for counts in (self.phase_samples, self._unreported_phase_samples):
                counts[sample.phase] = counts.get(sample.phase, 0) + 1

    # Polling, on the probe's own greenlet.

    def look(self, now: float, everything: bool = False) -> Look | None:
        """The QueryLog of a poll at ``now`` (None when no sample is due): the current samples and the overdue
        ones whose turn it is (``everything``: every pending sample, the last sweep). Its cost is the samples it
        looks for, not every pending one."""
        current: list[Sample]
        if everything:
            current, overdue = [], list(self.pending)
        else:
            overdue_after = max(MIN_CURRENT_SECONDS, CURRENT_TIMES_LONGEST * self.longest_found)
            current, overdue = self.pending.due(now, overdue_after)
        if not current and not overdue:
            return None
        times = [sample.logged_at for sample in current] + [sample.logged_at for sample in overdue]
        filters = {PROBE_KEY: self.run_id, **({WORKER_KEY: self.worker} if self.worker else {})}
        request = pb.QueryLogRequest(
            metadata_filters=filters,
            start_time=_rfc3339(min(times) - WINDOW_MARGIN_SECONDS),
            end_time=_rfc3339(max(times) + WINDOW_MARGIN_SECONDS),
            limit=min(self._seen + LIMIT_MARGIN, MAX_LIMIT),
        )
        return Look(request.SerializeToString(), current, overdue, sweep=everything,
                    share_spent=everything and self.share_spent())  # fmt: skip

    def asking(self) -> None:
        """A query is about to be sent (it counts as one of the probe's calls, whatever its outcome)."""
        self.queries += 1
        self._unreported_calls[0] += 1

    def started_late(self, seconds: float) -> None:
        """A poll for the current samples started ``seconds`` after it was free to go, due and let go by the pacing
        (it waited for the one before it to return, and for the event loop): ``poll_lateness`` keeps the largest."""
        self.poll_lateness = max(self.poll_lateness, seconds)

    def answered(self, took: float) -> None:
        """A query returned, an answer or an error, ``took`` s after it was sent: the next poll waited so long."""
        self.slowest_query = max(self.slowest_query, took)

    def observe(self, look: Look, raw: bytes, asked_at: float) -> int:
        """Record the pending samples a QueryLog answer (``raw``) returned; ``asked_at``: when it was sent."""
        try:
            response = pb.QueryLogResponse.FromString(raw)
        except DecodeError:  # a proxy or a misconfigured service: it will not get better, and must not kill the audit
            self.failed(f"INTERNAL: unreadable QueryLogResponse ({len(raw)} bytes)", fatal=True)
            return 0
        if not response.success:
            self.failed(f"QueryLog answered success=false: {response.error_message or 'no message'}", fatal=False)
            return 0
        found = 0
        for entry in response.logs:
            metadata = entry.metadata
            number = metadata.get(SAMPLE_KEY, "")
            if metadata.get(PROBE_KEY) != self.run_id or not number.isdigit():
                continue
            sample = self.pending.pop((metadata.get(WORKER_KEY, ""), int(number)))
            if sample is not None:
                self._found_total += 1
                latency = asked_at - sample.acked_at
                gap = asked_at - max(sample.last_look, sample.acked_at)
                if sample.held:
                    self.held_found.append((sample, latency, gap))
                    self.held_longest = max(self.held_longest, latency)
                elif look.sweep and gap > self._coarsest_kept(latency):
                    self._too_coarse(sample, gap, look.share_spent)
                else:
                    self._found(sample, latency, gap)
                found += 1
        self.pending.looked(look.current, look.overdue, asked_at)
        return found

    def _coarsest_kept(self, latency: float) -> float:
        """The widest bracket (s) the last sweep may give a sample of ``latency`` s and keep its figure: what the
        polls that followed it give, ``COARSE_TIMES_BOUND`` times the bound they stated, or, as they are paced after
        the stop and for a slow sample, the poll interval plus a tenth of its visibility, with a poll interval of
        slack (a sample followed so, 0.24 s after its last look at 1.6 s, was unknown against 0.21 s)."""
        paced = COARSE_TIMES_BOUND * self.poll_interval + RELATIVE_GAP * latency
        return max(COARSE_TIMES_BOUND * max(self.max_poll_gap, self.poll_interval), paced)

    def _too_coarse(self, sample: Sample, gap: float, share_spent: bool) -> None:
        """A sample the last sweep found ``gap`` s after its last look, wider than ``_coarsest_kept``: unknown with
        the reason, never a coarser figure: the query share was spent before it was visible (``share_spent``), else
        the polls did not look for it as paced."""
        self.unknown.append(sample)
        self.coarse_unknown, self.coarse_gap = self.coarse_unknown + 1, max(self.coarse_gap, gap)
        raise_it = "; raise it to follow them" if can_raise(self.query_share) else " (its maximum)"
        why = (
            f"--freshness-query-share {self.query_share:g}% was spent before they were visible{raise_it}"
            if share_spent
            else f"the polls looked for them less often than paced (the client busy or its queries slow), with "
            f"--freshness-query-share {self.query_share:g}% not spent"
        )
        self.unknown_because = (
            f"{self.coarse_unknown:,} found only by the last sweep, up to {self.coarse_gap:,.1f} s after the last "
            f"look, more than twice the bound stated and the poll interval plus a tenth of their visibility: {why}"
        )

    def _found(self, sample: Sample, latency: float, gap: float) -> None:
        """A found sample's figure: its visibility ``latency`` and its bracket ``gap`` (s)."""
        self.max_poll_gap = max(self.max_poll_gap, gap)
        _keep_largest(self.poll_gaps, sample.name, gap)
        if sample.phase:
            _keep_largest(self.phase_poll_gaps, sample.phase, gap)
        if latency >= self.longest_found:
            self.longest_found, self.longest_found_at = latency, sample.acked_at
        acked = sample.acked_at + self._wall_offset
        self.acked_first, self.acked_last = min(self.acked_first, acked), max(self.acked_last, acked)
        if sample.acked_at >= self.latest_found_at:
            self.latest_found, self.latest_found_at = latency, sample.acked_at
        self.record(sample.name, latency * 1000, acked, sample.phase)
        self._for_window(sample.acked_at, latency)

    # Held-back samples: a coarse window's, counted only when no finer window measured anything.

    def release_held(self, since: int = 0) -> None:
        """Count the held samples (those held from the ``since``-th on) and record the figures of those found, as if
        they had never been held; those still pending are looked for as any other."""
        released, self.held = self.held[since:], self.held[:since]
        for sample in released:
            sample.held = False
            self._count(sample)
        for sample, latency, gap in [found for found in self.held_found if not found[0].held]:
            self._found(sample, latency, gap)
        self.held_found = [found for found in self.held_found if found[0].held]
        self.held_longest = max((latency for _, latency, _ in self.held_found), default=0.0)

    def drop_held(self, since: int = 0, keep: Callable[[Sample], bool] = lambda sample: False) -> None:
        """Leave the held samples out for good, those held from the ``since``-th on but the ones ``keep`` keeps
        held (no longer looked for; counted in ``held_back`` only), and the held ones whose calls are in flight now
        when they are acknowledged."""
        dropped = [sample for sample in self.held[since:] if not keep(sample)]
        self.held = self.held[:since] + [sample for sample in self.held[since:] if keep(sample)]
        for sample in dropped:
            if sample.pending:
                self.pending.pop(sample.key)
        self._hold_back(len(dropped))
        self._dropped_below = self._next_number  # and those whose calls are in flight, when acknowledged
        self.held_found = [found for found in self.held_found if found[0].held and found[0] in self.held]
        self.held_longest = max((latency for _, latency, _ in self.held_found), default=0.0)

    def _hold_back(self, dropped: int) -> None:
        self.held_back += dropped
        self._unreported_held_back += dropped

    def counted(self) -> int:
        """The samples counted so far (not held back)."""
        return sum(self.samples.values())

    def settle_held(self) -> bool:
        """At the end of this process's looking: the held samples are released when no other sample was counted (a
        short run: a coarse figure, its bound stated, is better than none), else dropped. Returns whether released."""
        released = bool(self.held) and not self.counted()
        if released:
            self.release_held()
            self.held_released = True
        elif self.held:
            self.drop_held()
        return released

    def failed(self, detail: str, fatal: bool) -> None:
        """A probe query failed; a fatal failure (UNIMPLEMENTED, ...) stops the probe."""
        self.query_failures += 1
        self._unreported_calls[1] += 1
        self.error = detail
        if fatal:
            self.close()

    def record(self, name: str, latency_ms: float, acked: float, phase: str = "") -> None:
        """One visibility latency of request ``name``, of a log acknowledged at ``acked`` (epoch s: the history's row
        is that second's, so that a store that keeps up draws a flat line, not the rise from the first flush of a
        window, finding only the logs acknowledged just before it, to the next) and sent in ``--action`` phase
        ``phase``, if any."""
        micros = max(int(round(latency_ms * 1000)), 0)
        second = int(acked)
        self.histograms.record(name, OK, micros)
        for by_second in (self._interval, self._unreported):
            by_second.setdefault(second, LatencyHistograms()).record(name, OK, micros)
        if phase:
            self.phases.record(phase, OK, micros)
            self._unreported_phases.record(phase, OK, micros)

    def _for_window(self, acked_at: float, latency: float) -> None:
        """A found sample's latency (s) for a capacity step's window: counted only when it was acknowledged in the
        window (an earlier step's backlog, found late, is that step's); a worker keeps it by the epoch second of its
        acknowledgement for the master's window."""
        micros = max(int(round(latency * 1_000_000)), 0)
        if self.window is not None and acked_at >= self.window_since:
            self.window.record(micros)
        if self.worker:
            second = int(acked_at + self._wall_offset)
            self._unreported_by_ack.setdefault(second, Latencies()).record(micros)

    # A window of the run (a capacity step): every name's samples found in it, and those still pending too late.

    def start_window(self) -> None:
        """From now on, also record into a fresh window histogram (all names) the samples acknowledged from now on,
        found or late: an earlier step's backlog is that step's, whenever it is found. A worker's samples count by the
        epoch second of their acknowledgement (from the window's second on)."""
        self.window, self.window_taken = Latencies(), 0
        self.window_since = time.monotonic()

    def longest_poll_gap(self) -> float:
        """The longest time (s) between two polls whatever the query share: a tenth of the freshness SLO
        (``late_after``), never below ``poll_interval``; infinite without an SLO."""
        return max(self.poll_interval, self.late_after / POLLS_PER_SLO) if self.late_after > 0 else math.inf

    def late(self, now: float) -> int:
        """Samples acknowledged since the window started and pending longer than ``late_after``, here and at the
        workers as they last reported (by the epoch second of their acknowledgement)."""
        since_second = self._window_second()
        remote = sum(count for late in self.remote_late.values() for second, count in late.items()
                     if second >= since_second)  # fmt: skip
        return self.pending.older_than(now - self.late_after, since=self.window_since) + remote

    def _window_second(self) -> int:
        """The epoch second the window started in (0 before any window): a worker's samples count from it."""
        return int(self.window_since + self._wall_offset) if self.window_since > 0 else 0

    def window_p95_ms(self, now: float) -> tuple[float | None, int, int]:
        """(p95 in ms, samples visible, samples late) of the window, of its ``window_taken`` samples (the rest are
        pending, not late yet): the p95 counts the samples pending longer than ``late_after`` as later than any found
        (None when none was found or more than 5% are late)."""
        window = self.window
        found = window.count if window is not None else 0
        late = self.late(now) if self.late_after > 0 else 0
        if window is None or not found or late > 0.05 * (found + late):
            return None, found, late
        return window.value_at(min(95.0 * (found + late) / found, 100.0)) / 1000, found, late

    # The end, the master's merge, the files.

    def close(self) -> None:
        """Stop sampling and polling."""
        self.closed = True
        self.due = float("inf")

    def finish(self, unknown_because: str = "", never_visible_because: str = "") -> None:
        """The end of the looking: whatever is still pending was never visible (``never_visible_because``: why, when
        not a settled audit, e.g. 'the service stored nothing during the audit'), or, when the looking was cut short
        (``unknown_because``: why, e.g. 'the audit was interrupted'), is unknown (held samples settled first)."""
        self.settle_held()
        self.close()
        left = self.pending.clear()
        if unknown_because and left:
            self.unknown.extend(left)
            self.unknown_because = "; ".join(filter(None, (unknown_because, self.unknown_because)))
        elif left:
            self.never_visible.extend(left)
            self.never_visible_because = never_visible_because

    def found_any(self) -> bool:
        """Whether the service was seen storing any sample of the test: one found (counted, held back, or by the
        last sweep too coarsely to count; on a master, its workers' counted ones too), or the store's flush cycle
        learnt (two flushes seen, on this process or a worker that learnt for the others)."""
        return bool(self._found_total or self.histograms.combined().count or self.coarse_unknown or self.flush_cycle)

    def hand_off(self, now: float) -> dict[str, list[list[Any]]]:
        """A worker at its stop: ``pending``, its pending samples with their age, the time since they were last looked
        for (s) and whether held back, for the master to keep looking for; ``held_found``, its held samples found,
        with their age, visibility and bracket (s). The master settles the held ones over every worker's counts (a
        learning worker's held cycle is dropped when another worker's window counted samples)."""
        self.close()
        held_found = [[s.token, s.number, s.name, s.logged_at, now - s.acked_at, latency, gap, s.phase]
                      for s, latency, gap in self.held_found]  # fmt: skip
        self.held, self.held_found, self.held_longest = [], [], 0.0
        pending = [[s.token, s.number, s.name, s.logged_at, now - s.acked_at, now - max(s.last_look, s.acked_at),
                    s.phase, s.held] for s in self.pending.clear()]  # fmt: skip
        return {"pending": pending, "held_found": held_found}

    def adopt(self, handed: dict[str, list[list[Any]]], now: float, worker: str = "") -> None:
        """The master takes a worker's pending samples and held samples over (``hand_off``; ages turned into this
        process's clock)."""
        for token, number, name, logged_at, age, since_look, phase, held in sorted(
            handed.get("pending", ()), key=lambda item: -item[4]
        ):
            sample = Sample(token, number, name, logged_at, now - age, last_look=now - since_look, phase=phase,
                            held=held, sent_at=now - age)  # fmt: skip
            self.pending.add(sample)
            if held:
                self.held.append(sample)
        for token, number, name, logged_at, age, latency, gap, phase in handed.get("held_found", ()):
            sample = Sample(token, number, name, logged_at, now - age, phase=phase, held=True, sent_at=now - age)
            self.held.append(sample)
            self.held_found.append((sample, latency, gap))
            self.held_longest = max(self.held_longest, latency)
        self.remote_pending.pop(worker, None)
        self.remote_late.pop(worker, None)
        self.remote_unsettled.pop(worker, None)

    def _late_by_second(self) -> dict[int, int]:
        if self.late_after <= 0:
            return {}
        return self.pending.older_than_by_second(time.monotonic() - self.late_after, self._wall_offset)

    def take_report(self) -> dict[str, Any]:
        """What a worker sends the master with each stats report: histograms and counts since the last one."""
        report = {
            "histograms": {str(second): found.encode() for second, found in self._unreported.items()},  # by second
            "samples": self._unreported_samples,
            "phase_histograms": self._unreported_phases.drain(),
            "phase_samples": self._unreported_phase_samples,
            "queries": self._unreported_calls[0],
            "failures": self._unreported_calls[1],
            "max_poll_gap": self.max_poll_gap,
            "slowest_query": self.slowest_query,
            "poll_lateness": self.poll_lateness,
            "poll_gaps": self.poll_gaps,
            "phase_poll_gaps": self.phase_poll_gaps,
            "asked": self._unreported_asked,
            "asked_unsampled": self._unreported_asked_unsampled,
            "sampling_limited": self.sampling_limited,
            "sampling_reserved_at": self.sampling_reserved_at,
            "longest_found": self.longest_found,
            "acked_span": [self.acked_first, self.acked_last] if self.acked_last >= self.acked_first else None,
            "error": self.error,
            "pending": len(self.pending) - self.held_pending(),
            "late": {str(second): count for second, count in self._late_by_second().items()},  # msgpack: str keys
            "found_by_ack": {str(second): found.encode() for second, found in self._unreported_by_ack.items()},
            "taken_by_ack": {str(second): taken for second, taken in self._unreported_taken_by_ack.items()},
            "held_back": self._unreported_held_back,
            "held_released": self.held_released,
            "flush_cycle": self.flush_cycle,
            "precise_window_at": None if math.isinf(self.precise_window_at) else self.precise_window_at,
            "unsettled_from": None if math.isinf(unsettled := self.unsettled_from()) else unsettled,
            "unacknowledged": self._unreported_unacknowledged,
            "failing_since": self.failing_since,
            "last_acked": self.last_acked,
            "failing_status": self.failing_status,
        }
        self._unreported_held_back = self._unreported_unacknowledged = 0
        self._unreported_by_ack, self._unreported_taken_by_ack = {}, {}
        self._unreported_samples, self._unreported_phase_samples, self._unreported_calls = {}, {}, [0, 0]
        self._unreported_asked = self._unreported_asked_unsampled = 0.0
        self._unreported = {}
        return report

    def merge_report(self, report: dict[str, Any], worker: str) -> None:
        """The master adds a worker's report."""
        for second, encoded in (report.get("histograms") or {}).items():
            # A second already written to the history (a late report) goes into the next row written.
            interval = self._interval.setdefault(max(int(second), self._written_through + 1), LatencyHistograms())
            for (name, outcome), latencies in LatencyHistograms.decode(encoded).by_key.items():
                self.histograms.add(name, outcome, latencies)
                interval.add(name, outcome, latencies)
        since_second = self._window_second()
        for second, encoded in (report.get("found_by_ack") or {}).items():
            if self.window is not None and int(second) >= since_second:
                self.window.add(Latencies.decode(*encoded))
        for second, taken in (report.get("taken_by_ack") or {}).items():
            if self.window is not None and int(second) >= since_second:
                self.window_taken += taken
        for name, count in report.get("samples", {}).items():
            self.samples[name] = self.samples.get(name, 0) + count
            self._seen += count
        self.phases.merge(report.get("phase_histograms") or [])
        for phase, count in report.get("phase_samples", {}).items():
            self.phase_samples[phase] = self.phase_samples.get(phase, 0) + count
        self.queries += report.get("queries", 0)
        self.query_failures += report.get("failures", 0)
        self.max_poll_gap = max(self.max_poll_gap, report.get("max_poll_gap", 0.0))
        self.slowest_query = max(self.slowest_query, report.get("slowest_query", 0.0))
        self.poll_lateness = max(self.poll_lateness, report.get("poll_lateness", 0.0))
        for mine, theirs in ((self.poll_gaps, "poll_gaps"), (self.phase_poll_gaps, "phase_poll_gaps")):
            for key, gap in (report.get(theirs) or {}).items():
                _keep_largest(mine, key, gap)
        self.asked += report.get("asked", 0.0)
        self.asked_unsampled += report.get("asked_unsampled", 0.0)
        self.held_back += report.get("held_back", 0)
        self.held_released = self.held_released or bool(report.get("held_released"))
        self.flush_cycle = max(self.flush_cycle, report.get("flush_cycle", 0.0))
        at = report.get("precise_window_at")
        self.remote_precise_at[worker] = math.inf if at is None else at
        unsettled = report.get("unsettled_from")
        self.remote_unsettled[worker] = math.inf if unsettled is None else unsettled
        self.precise_window_at = min(self.remote_precise_at.values())
        self.sampling_limited = self.sampling_limited or bool(report.get("sampling_limited"))
        self.unacknowledged += report.get("unacknowledged", 0)
        self.remote_failing[worker] = report.get("failing_since")
        failing = list(self.remote_failing.values())
        self.failing_since = None if None in failing else min(failing)  # type: ignore[type-var]
        self.failing_status = report.get("failing_status") or self.failing_status
        self.last_acked = max(self.last_acked, report.get("last_acked", 0.0))
        reserved = [at for at in (self.sampling_reserved_at, report.get("sampling_reserved_at")) if at is not None]
        self.sampling_reserved_at = min(reserved, default=None)
        self.longest_found = max(self.longest_found, report.get("longest_found", 0.0))
        if report.get("acked_span"):
            first, last = report["acked_span"]
            self.acked_first, self.acked_last = min(self.acked_first, first), max(self.acked_last, last)
        self.error = report.get("error") or self.error
        self.remote_pending[worker] = report.get("pending", 0)
        self.remote_reported[worker] = time.monotonic() - self._started
        self.remote_late[worker] = {int(second): count for second, count in (report.get("late") or {}).items()}

    def lose(self, workers: list[str]) -> None:
        """The master at the end: ``workers`` (Locust client ids) never sent their final report (lost mid-run): the
        samples they still looked for stay pending, never found, and what the sample rate asked of them after their
        last report is in no count (``asked`` has what they reported)."""
        for worker in workers:
            if worker in self.remote_reported and worker not in self.lost_workers:
                self.lost_workers[worker] = self.remote_reported[worker]
                self.lost_pending += self.remote_pending.get(worker, 0)

    def reset_stats(self) -> None:
        """Reset Stats: the figures start again (pending samples are still looked for)."""
        self.histograms.reset()
        self._interval.clear()
        self.samples.clear()

    def unsettled_from(self) -> float:
        """When (epoch s) the earliest sample every poll still looks for here was acknowledged (infinite when none
        is): the history's rows from its second on may still get samples. An overdue one (a late log, or one never
        stored) holds no row back; found, it goes into the next row taken."""
        oldest = self.pending.oldest_current()
        return math.inf if oldest is None else oldest.acked_at + self._wall_offset

    def complete_before(self, now: float) -> int:
        """The epoch second before which every second's history row is complete at ``now`` (epoch s; on a master a
        report interval ago): none of its samples is still looked for here or, as last reported, at a worker."""
        return math.floor(min(now, self.unsettled_from(), *self.remote_unsettled.values()))

    def take_intervals(self, before: float = float("inf")) -> dict[int, dict[str, Latencies]]:
        """The samples acknowledged in each epoch second before ``before`` (all: every second; ``complete_before``
        while the test runs) and found, per name, taken once each (a history row per second and name). A sample
        found for a second already taken (a worker's late report, an overdue sample) goes into the next one taken."""
        taken = {}
        for second in sorted(second for second in self._interval if second < before):
            found = self._interval.pop(second)
            taken[second] = {name: found.combined(name=name) for name in found.names()}
            self._written_through = max(self._written_through, second)
        return taken

    def pending_count(self) -> int:
        """Samples acknowledged and not found yet, here and (on the master) at the workers, held ones included."""
        return len(self.pending) + sum(self.remote_pending.values())

    def held_pending(self) -> int:
        """Held samples acknowledged and not found yet, here (a worker reports its pending samples without them)."""
        return sum(1 for sample in self.held if sample.pending)

    def counted_pending(self) -> int:
        """Counted samples not found yet, here and at the workers: with the visible, never visible and unknown
        ones, every counted sample (``samples``), held ones left out as they are there."""
        return self.pending_count() - self.held_pending()

    def by_name(self, samples: list[Sample]) -> dict[str, int]:
        """How many of ``samples`` (never visible, unknown) per request name."""
        counts: dict[str, int] = {}
        for sample in samples:
            counts[sample.name] = counts.get(sample.name, 0) + 1
        return counts

    def by_phase(self, samples: list[Sample]) -> dict[str, int]:
        """How many of ``samples`` (never visible, unknown) per ``--action`` phase."""
        counts: dict[str, int] = {}
        for sample in samples:
            if sample.phase:
                counts[sample.phase] = counts.get(sample.phase, 0) + 1
        return counts

    def named(self, samples: list[Sample]) -> list[dict[str, Any]]:
        """The first ``NAMED_SAMPLES`` of ``samples``, JSON-ready: request name, probe, number, timestamps."""
        return [
            {"name": s.name, "probe": f"{self.run_id}.{s.token}" if s.token else self.run_id, "sample": s.number,
             "logged_at": _rfc3339(s.logged_at), "acked_at": _rfc3339(self._wall_offset + s.acked_at)}
            for s in samples[:NAMED_SAMPLES]
        ]  # fmt: skip
