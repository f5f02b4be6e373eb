"""Delivery audit: did the service store every log it acknowledged during the run?

The service acknowledges before it stores and may drop a batch whose flush failed, so after the
stop the audit counts the logs carrying this run's ``run_id`` (QueryLog filtered by metadata
only, ``limit=1``, reading ``total_count``: the real service's level-filter quirk breaks a query
by service_name) and polls until the count reaches the acknowledged number (plus the logs in
doubt), or this run's count stands still for the settle period and the service then stores the audit's barrier
(a log written after it, queued behind all of the run's: ``barrier``), or the timeout runs out (the count:
``stored_count``).

Exact when every call's outcome is known. A log *in doubt* belongs to a call whose answer never
arrived (a deadline, a cancel, a broken connection): the service may or may not have queued it.
Then loss is a range: ``lost_min`` logs are surely lost (acknowledged, not stored), ``lost_max``
may be (the in-doubt logs not found count too).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import grpc

from grpc_user.calls import error_message, status_name
from grpc_user.locust.audit.barrier import Barriers, Call
from grpc_user.locust.audit.stored_count import RETRYABLE, count_stored
from grpc_user.locust.run import exit_codes

POLL_SECONDS = 0.25
# The statuses of an audit that could not decide (exit code 4, delivery unknown): never a figure a gate passes on.
UNKNOWN = ("incomplete", "unsettled", "interrupted", "error")


@dataclass
class AuditResult:
    """What the service stored of what it acknowledged.

    ``status``: ok (nothing missing); in_doubt (fewer logs were found than acknowledged and in doubt together, but
    no fewer than acknowledged: ``lost_max`` logs are missing, of either kind, so none is proven lost); lost
    (``lost_min`` > 0: this run's count stood still for the settle period, then the service stored the audit's
    barrier, with acked logs still missing); incomplete (the final counts of ``unreported_workers`` never arrived,
    so ``acked`` is only a lower bound, or ``unexpected`` logs this run did not send carry its run id; either may
    stand in for lost ones, and nothing missing was proven lost: delivery unknown, whatever was stored);
    unsettled (still storing, or not even storing the barrier, when the timeout ran out); interrupted (a signal cut
    the audit short: the counts so far); skipped; error (the audit could not count); running (still polling).
    ``settle_seconds``: how long the audit waited, from its first count to its verdict (or to the timeout).
    ``lost`` = ``lost_min``; ``lost_max`` None: unknown, as whenever ``unreported_workers`` leave ``acked`` a lower
    bound or ``unexpected`` logs share the run id (either may stand in for lost ones, whatever the status), and when
    no audit ran (skipped).
    ``barriers``: the logs the audit wrote (``grpc_user.locust.audit.barrier``): the
    service's own totals count them, this run's count does not; ``barriers_by_peer``: to which server each went, as
    ``{"peer", "written", "stored", "refused", "reached"}`` (``reached`` false: no call of the run reached it).
    ``service_stored``: the logs the service stored while the audit waited, every run's and the barriers (the rise
    of its count of every stored log from the audit's first poll to its last); None when it did not count twice
    (interrupted, error, skipped). 0 in an ``unsettled`` audit: the service stored nothing at all, not even the
    barrier, for its whole ``--audit-timeout``.
    """

    run_id: str
    acked: int
    persisted: int
    lost: int
    unexpected: int
    settle_seconds: float
    status: str
    detail: str = ""
    in_doubt: int = 0
    lost_min: int = 0
    lost_max: int | None = 0
    barriers: int = 0
    unreported_workers: list[str] = field(default_factory=list)
    barriers_by_peer: list[dict[str, Any]] = field(default_factory=list)
    service_stored: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the ``_audit.json`` file)."""
        return asdict(self)

    @property
    def missing(self) -> int:
        """The logs not found: acknowledged and in doubt, less the stored count (never below 0)."""
        return max(self.acked + self.in_doubt - self.persisted, 0)

    def sentence(self) -> str:
        """The verdict first, in words."""
        acked = f"{self.acked:,} acknowledged logs"
        doubt = f" and {self.in_doubt:,} in doubt" if self.in_doubt else ""
        verdicts = {
            "running": f"settling: {self.persisted:,} of {acked}{doubt} stored after {self.settle_seconds:.1f} s",
            "ok": f"all {acked}{doubt} were stored",
            "in_doubt": f"{self.missing:,} of the {acked}{doubt} were not stored, 0..{min(self.missing, self.acked):,} "
            "of them acknowledged (a stored count cannot tell an acknowledged log from one in doubt, and the calls in "
            "doubt ended without an answer, so their logs may never have been queued): lost "
            f"{self.lost_min:,}..{self.lost_bound()}",
            "lost": self._lost_words(acked),
            "unsettled": f"{self.missing:,} of {acked}{doubt} were not stored yet when the audit gave up; "
            "delivery unknown, not lost",
            "incomplete": f"the final counts of {len(self.unreported_workers)} worker(s) never arrived "
            f"({', '.join(self.unreported_workers)}): at least {acked} (and {self.in_doubt:,} in doubt), "
            f"{self.persisted:,} stored; delivery unknown"
            if self.unreported_workers
            else f"{self.persisted:,} logs stored under this run's id for {acked}{doubt}: {self.unexpected:,} more "
            "than it sent, so the stored count cannot tell whether all of its own were stored; delivery unknown",
            "interrupted": f"cut short by {self.detail or 'a signal'} after {self.settle_seconds:.1f} s: "
            f"{self.persisted:,} of {acked}{doubt} stored so far; delivery unknown",
            "skipped": "skipped",
            "error": "could not count the stored logs",
        }
        return f"Delivery audit {self.status.upper()}: {verdicts.get(self.status, self.status)}"

    def unknown_bound_cause(self) -> str:
        """Why nothing bounds the loss from above (``lost_max`` None), in words: a worker's counts missing (``acked``
        a lower bound), or logs this run did not send under its run id (``unexpected``)."""
        if self.unreported_workers:
            return "a worker's final counts never arrived"
        return "logs this run did not send carry its run id"

    def _lost_words(self, acked: str) -> str:
        if self.lost_max is None:
            at_least = "at least " if self.unreported_workers else ""
            return (f"at least {self.lost_min:,} of {at_least}{acked} were lost; how many more is unknown "
                    f"({self.unknown_bound_cause()})")  # fmt: skip
        more = f" (up to {self.lost_max:,} with the logs in doubt)" if self.lost_max > self.lost_min else ""
        return f"{self.lost_min:,} of {acked} were lost{more}"

    def lost_bound(self) -> str:
        """The most that may be lost, in words: ``lost_max``, or '?' when it is unknown (acked a lower bound)."""
        return "?" if self.lost_max is None else f"{self.lost_max}"

    def summary(self) -> str:
        """One line for the end of a run."""
        return (
            f"{self.sentence()} (run_id={self.run_id} acked={self.acked} in_doubt={self.in_doubt} "
            f"persisted={self.persisted} lost={self.lost_min}..{self.lost_bound()} unexpected={self.unexpected} "
            f"audit took {self.settle_seconds:.1f} s){f': {self.detail}' if self.detail else ''}"
        )


def exit_code(result: AuditResult, allow_loss: bool) -> int:
    """The exit code a headless run gets from its audit (0: the audit does not fail the run)."""
    if result.status == "lost" and not allow_loss:
        return exit_codes.LOGS_LOST
    if result.status in UNKNOWN:
        return exit_codes.DELIVERY_UNKNOWN
    return 0


def skipped(run_id: str, acked: int, reason: str, in_doubt: int = 0) -> AuditResult:
    """The result when no audit runs (``--no-audit``): nothing counted, so nothing bounds the loss (``lost_max``
    None)."""
    return AuditResult(run_id, acked, 0, 0, 0, 0.0, "skipped", reason, in_doubt, lost_max=None)


def verdict(run_id: str, acked: int, in_doubt: int, count: int, settle_seconds: float, proven: bool,
            detail: str = "", unreported_workers: Sequence[str] = ()) -> AuditResult:  # fmt: skip
    """The audit's verdict from its last count: the one place that decides what the figures mean.

    ``proven``: what is missing will not come (every server stored a barrier written after this run's count stood
    still: ``audit_delivery``). Without that proof a shortfall is ``unsettled``, never ``lost``: lost
    0..``lost_max``.
    ``unreported_workers``: workers whose final counts never arrived, so ``acked`` and ``in_doubt`` are lower bounds
    and their unreported logs may stand in for lost ones: a shortfall below ``acked`` is still ``lost`` once proven,
    anything else is ``incomplete`` (never ``ok`` or ``in_doubt``), and ``lost_max`` is unknown (None) whatever the
    status: the logs missing beyond the lower bounds are not counted anywhere. A stored count above ``acked`` +
    ``in_doubt`` (``unexpected``: another writer shares the run id) is judged the same way, and ``detail`` says so.
    """
    lost_min, lost_max = max(acked - count, 0), max(acked + in_doubt - count, 0)
    if not lost_max:
        status = "ok"
    elif not proven:
        status, lost_min = "unsettled", 0  # what is missing may still come: lost 0..lost_max
    else:
        status = "lost" if lost_min else "in_doubt"
    unexpected = max(count - acked - in_doubt, 0)
    # Logs this run did not send carry its run id (``unexpected``: another writer shares it, such as a run that reused
    # --run-id while its logs were still queued): they may stand in for lost ones as a lost worker's do.
    unknown_bound = bool(unreported_workers) or unexpected > 0
    if unknown_bound and status in ("ok", "in_doubt"):
        status = "incomplete"
    if unexpected and not unreported_workers:
        shared = (f"{unexpected:,} stored logs more than this run sent carry its run id {run_id!r}: another writer "
                  "shares it (a --run-id reused while an earlier run's logs were still queued?), and its logs may "
                  "stand in for lost ones; give each run an id of its own")  # fmt: skip
        detail = "; ".join(filter(None, (detail, shared)))
    return AuditResult(run_id, acked, count, lost_min, unexpected, round(settle_seconds, 3), status, detail,
                       in_doubt, lost_min, None if unknown_bound else lost_max,
                       unreported_workers=sorted(unreported_workers))  # fmt: skip


def undecided(status: str, run_id: str, acked: int, in_doubt: int, count: int, seconds: float, detail: str,
              unreported_workers: Sequence[str] = ()) -> AuditResult:  # fmt: skip
    """An audit without a verdict (``status`` "interrupted": a signal, ``detail`` e.g. SIGINT, cut it short; "error":
    it could not count, ``detail`` says why): the counts so far, no loss claimed, and what is missing may still come:
    lost 0..``lost_max`` as for ``unsettled`` (``count`` -1: never counted, so lost 0..acked + in doubt; None with
    ``unreported_workers``, as in ``verdict``)."""
    persisted = max(count, 0)
    lost_max = None if unreported_workers else max(acked + in_doubt - persisted, 0)
    return AuditResult(run_id, acked, persisted, 0, 0, round(seconds, 3), status, detail, in_doubt, 0, lost_max,
                       unreported_workers=sorted(unreported_workers))  # fmt: skip


@dataclass
class _Counts:
    """The audit's two counts over time: this run's stored logs (and when it last moved) and the service's."""

    started: float
    run: int = -1
    run_first: int = 0
    run_moved: float = 0.0
    service: int = -1
    service_first: int = 0

    def update(self, now: float, run: int, service: int) -> None:
        if self.run < 0:
            self.run_first, self.service_first = run, service
        if run != self.run:
            self.run, self.run_moved = run, now
        self.service = service


def audit_delivery(
    call: Callable[[str, bytes], bytes],
    *,
    run_id: str,
    acked: int,
    timeout: float,
    settle: float,
    in_doubt: int = 0,
    sleep: Callable[[float], Any] = time.sleep,
    target: str = "",
    progress: Callable[[AuditResult], Any] | None = None,
    unreported_workers: Sequence[str] = (),
    interrupted_by: Callable[[], str] = str,
    barrier_writes: Mapping[str, Call] | None = None,
    unreached: Sequence[str] = (),
) -> AuditResult:
    """Poll the stored counts until this run's reaches ``acked + in_doubt``, the service stores the barrier the
    audit writes once this run's count stood still for ``settle`` s, or ``timeout`` s pass.

    Each poll counts this run's logs and every log the service stores. A service still storing anything (an
    earlier test's backlog, another team's run, a slow store) may store this run's logs next, and one that stored
    nothing for ``settle`` s may only be waiting for its flush timer; so a shortfall is lost only once the service
    has stored a log written after this run's count stood still (the barrier, queued behind every log acknowledged
    before it; another every ``RESEND_SECONDS`` while none is stored); at the timeout it is ``unsettled``, and so it
    is with a service that refuses the barrier: nothing proves its logs will not still come.
    ``barrier_writes``: server -> a call to that server alone, one barrier each (every server the run reached: each
    replica has a queue of its own); lost needs every one stored. None: one barrier over ``call``, named ``target``.
    ``unreached``: servers the target lists that no call of the run reached: no barrier there, named in
    ``barriers_by_peer``.
    ``unreported_workers``: the workers whose final counts never arrived, so ``acked`` is only a lower bound and
    reaching it proves nothing: the audit waits for this run's count to stand still and its barrier to be stored,
    and the verdict is ``incomplete`` unless a shortfall below ``acked`` was proven ``lost`` (``verdict``).
    ``interrupted_by``: what cut the audit short ('' while nothing did), asked before each poll (``sleep`` may
    return early for it); then the result is ``interrupted`` with the counts so far.
    """
    counts = _Counts(time.monotonic())
    barrier = Barriers(run_id, barrier_writes if barrier_writes is not None else {target or "the target": call},
                       unreached)  # fmt: skip
    while True:
        now = time.monotonic()
        if cause := interrupted_by():
            return undecided("interrupted", run_id, acked, in_doubt, counts.run, now - counts.started, cause,
                             unreported_workers)  # fmt: skip
        try:
            barrier.count(call)
            count, service = count_stored(call, run_id), count_stored(call, None)
        except grpc.RpcError as error:
            # A busy or flaky service (the very thing under test) gets retried until the timeout.
            now = time.monotonic()
            if status_name(error) not in RETRYABLE or now - counts.started >= timeout:
                detail = error_message(error, target)
                return undecided("error", run_id, acked, in_doubt, counts.run, now - counts.started, detail,
                                 unreported_workers)  # fmt: skip
            sleep(POLL_SECONDS)
            continue
        except RuntimeError as error:
            return undecided("error", run_id, acked, in_doubt, counts.run, now - counts.started, str(error),
                             unreported_workers)  # fmt: skip
        now = time.monotonic()  # the counts' own time (a slow service answers late): the timeout counts it too
        counts.update(now, count, service)
        if progress is not None:
            progress(AuditResult(run_id, acked, count, 0, 0, round(now - counts.started, 1), "running", "",
                                 in_doubt))  # fmt: skip
        reached = count >= acked + in_doubt and not unreported_workers
        # A count that stood still for the settle period proves nothing against a longer flush period or a backlog
        # stored first: a barrier written now and found stored does (everything queued before it was stored or
        # dropped), whatever else the service stores meanwhile.
        settled = barrier.stored_everywhere
        if reached or settled or now - counts.started >= timeout:
            break
        if now - counts.run_moved >= settle:
            barrier.send_due(now)
        sleep(POLL_SECONDS)
    result = verdict(run_id, acked, in_doubt, count, now - counts.started, settled or reached,
                     unreported_workers=unreported_workers)  # fmt: skip
    result.barriers, result.barriers_by_peer = barrier.sent, barrier.figures()
    result.service_stored = max(counts.service - counts.service_first, 0)
    if result.status == "unsettled":
        result.detail = _unsettled(counts, barrier, now, result.missing, timeout)
    elif result.status in ("lost", "in_doubt"):  # proven only by the barriers, every one stored
        result.detail = (
            f"this run's stored count stood still for {settle:g} s, then the service stored a log written after it "
            "(the audit's barrier, queued behind every log it had acknowledged): what is missing was dropped, not "
            "delayed"
            + (f" (on each of the {len(barrier.by_peer)} servers the run reached)" if len(barrier.by_peer) > 1 else "")
            + (
                f"; no call of the run reached {', '.join(barrier.unreached)}: no barrier needed there"
                if barrier.unreached
                else ""
            )
        )
    if unreported_workers:
        result.detail = "; ".join(filter(None, (result.detail, _unreported(result))))
    return result


def _unreported(result: AuditResult) -> str:
    """What the workers whose final counts never arrived leave unknown (named here unless the sentence does)."""
    beyond = f" ({result.unexpected:,} stored beyond it may be theirs)" if result.unexpected else ""
    workers = "" if result.status == "incomplete" else (
        f"the final counts of {len(result.unreported_workers)} worker(s) never arrived "
        f"({', '.join(result.unreported_workers)}): "
    )  # fmt: skip
    return (f"{workers}acknowledged is a lower bound{beyond}, and the logs they acknowledged since their last report "
            "may stand in for lost ones")  # fmt: skip


def _rates(counts: _Counts, now: float) -> tuple[float, float]:
    """Logs per second the service stored since the audit began: this run's, and all (a poll's two counts are two
    queries: a flush between them lands in one only, so the difference does not tell others' logs apart)."""
    seconds = max(now - counts.started, 1e-9)
    return (counts.run - counts.run_first) / seconds, (counts.service - counts.service_first) / seconds


def _unsettled(counts: _Counts, barrier: Barriers, now: float, missing: int, timeout: float) -> str:
    """Why the audit gave up: still storing, or storing nothing, not even the barrier written after the stop, or the
    barrier refused; with several servers, which of them had not stored theirs."""
    rate, total = _rates(counts, now)
    storing = f"{total:,.0f} logs/s ({rate:,.0f} of them this run's)"
    if barrier.refused:
        return (f"the service refused the audit's barrier ({barrier.refused}): without a log written after the stop "
                f"and found stored, nothing proves that what is missing was dropped rather than delayed (it stored "
                f"{storing} over the audit); raise --audit-timeout to wait longer")  # fmt: skip
    stored = [one.peer for one in barrier.by_peer if one.visible]
    if barrier.sent and stored:
        unwritten = [one.peer for one in barrier.by_peer if not one.sent]
        waiting = [peer for peer in barrier.not_stored() if peer not in unwritten]
        them = "it" if len(stored) == 1 else "them"
        parts = [f"{', '.join(stored)} stored the barrier written to {them}"]
        if waiting:
            parts.append(f"{', '.join(waiting)} had not stored {'its' if len(waiting) == 1 else 'theirs'} when "
                         f"--audit-timeout {timeout:g} s ran out (a longer flush period there? its queue may still "
                         "hold this run's logs): raise --audit-timeout")  # fmt: skip
        if unwritten:
            parts.append(f"no barrier could be written to {', '.join(unwritten)} (unreachable?): its queue is unknown")
        return "; ".join(parts)
    if barrier.sent and total <= 0:
        return (f"the service stored nothing, not even the log the audit wrote after the stop ({barrier.sent} "
                f"barrier{'s' if barrier.sent > 1 else ''}), within --audit-timeout {timeout:g} s: a flush period "
                "longer than that, or a service that stores nothing at all: raise --audit-timeout to tell")  # fmt: skip
    if barrier.sent:
        return (f"the service was still storing {storing} and had not reached the audit's barrier, queued behind "
                f"this run's logs, when --audit-timeout {timeout:g} s ran out (a backlog stored first?): raise "
                "--audit-timeout")  # fmt: skip
    if rate > 0:
        return (f"still storing {rate:,.0f} logs/s of this run when --audit-timeout {timeout:g} s ran out; "
                f"about {missing / rate:,.0f} s more needed: raise --audit-timeout")  # fmt: skip
    return (f"the service was still storing {total:,.0f} logs/s, none of this run's, when --audit-timeout "
            f"{timeout:g} s ran out (a backlog stored first?): raise --audit-timeout")  # fmt: skip
