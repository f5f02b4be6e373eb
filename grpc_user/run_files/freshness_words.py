"""The words both the plugin's summary line and the report give for why a run counted fewer freshness samples than
its sample rate asked for, read from ``_freshness.json``'s fields (``schema.FRESHNESS_INFO``): one wording, one
reading. Free of Locust, as the rest of ``run_files``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from grpc_user.run_files.schema import AGED_GAP_SHARE, HELD_BACK_MEANS, WIDER_THAN_ASKED

# Samples due while no call came are taken from the next calls, up to this long a debt (s): paced users wake
# together (make demo's 20 users at --target-rps 100 call in bursts ~0.18 s apart), and a debt of one interval only
# took half the rate from them. The probe keeps to it; the words name it.
CATCH_UP_SECONDS = 1.0
# The figures of a store not learnt to keep up say which part of the run they cover when its last counted sample
# was acknowledged more than this long (s; a sampling window and its tail), and this share of the test, before the
# stop: its visibility may have grown since, unmeasured (a new user's figure covered 2 to 14 s of a 30 s run whose
# last logs took 45 s, and a gate at 25 s passed it); or when its first was acknowledged as long after the probe's
# first possible sample (``SAMPLED_FROM_SECONDS``): its visibility before was not measured (--store-rate 60 of 100
# calls/s, 30 s: figures from ~10 s on, said nowhere).
UNCOVERED_AFTER_SECONDS = 4.0
UNCOVERED_SHARE = 0.1
# --freshness-query-share's maximum (percent): the probe's queries are then at most its process's calls (plus one),
# so what limits it there is the call rate, and no output says to raise the share.
MAX_QUERY_SHARE_PERCENT = 100.0
# The probe samples no call in a test's first this many seconds (s; the call rate and the store's pace are learnt
# from then on, ``windows.LEARN_FIRST_AT_SECONDS``): figures from then cover the run from its start.
SAMPLED_FROM_SECONDS = 2.0


def sampled(data: Mapping[str, Any]) -> str:
    """``; sampled 84 of 200 asked: limited by --freshness-query-share 1.5%`` whenever fewer samples were counted
    than the rate asked for, with the causes: the share, the samples asked while the probe did not sample (its
    first seconds: the call rate and the store's pace are learnt first), those due while no call came, those held
    back ('' when none is missing, and for runs whose files predate ``asked``). ``data``: ``_freshness.json``'s
    top-level fields (``samples``; ``asked``, ``asked_unsampled``, ``taken``, ``held_back``, ``sampling_limited``,
    ``sampling_reserved_at_s``, ``query_share_percent``, ``unacknowledged``, ``failing_since_s``, ``failing_status``
    when the run wrote them). A service that acknowledged no call from some moment on is named (``failing``), with
    the samples that fell on its calls, or alone when none did (it failed between sampling windows)."""
    asked = data.get("asked") or 0
    if data["samples"] >= asked:
        return lost(data)
    held = data.get("held_back", 0)
    unacknowledged = data.get("unacknowledged", 0)
    # Each rounded apart, and a window's first sample is taken at once (not owed from before it): 13 fell due while
    # not sampling beside 389 taken of 401 asked. The words name at most the samples missing.
    taken = data.get("taken", data["samples"])
    unsampled = min(data.get("asked_unsampled", 0), max(asked - taken - unacknowledged, 0))
    causes = []
    share = data.get("query_share_percent", 1.5)
    if data.get("sampling_limited"):
        causes.append(limited_by(share, data.get("poll_interval_ms")))
    # No sampled call failed, but the calls heard while none was sampled did: the service is named once
    failed_unsampled = not unacknowledged and data.get("failing_since_s") is not None
    if data.get("sampling_reserved_at_s") is not None:
        causes.append(reserve_cause(data["sampling_reserved_at_s"], share, bool(data.get("visible", 1))))
    elif unsampled and not data.get("sampling_limited"):
        why = (f": in its first seconds (it learns the call rate and the store's pace first) and while the service "
               f"acknowledged no call{failing(data)}" if failed_unsampled else
               " (its first seconds: it learns the call rate and the store's pace first)")  # fmt: skip
        causes.append(f"{unsampled:,} fell due while the probe did not sample{why}")
        failed_unsampled = False
    if unacknowledged:
        causes.append(f"{unacknowledged:,} fell on calls the service did not acknowledge{failing(data)}")
    elif failed_unsampled:
        causes.append(f"the service acknowledged no call{failing(data)}")
    not_taken = asked - unsampled - unacknowledged - taken
    if not_taken >= 1:
        causes.append(
            f"{not_taken:,} fell due while no call came to take them (owed for {CATCH_UP_SECONDS:g} s at most)"
        )
    line = f"; sampled {data['samples']:,} of {asked:,} asked" + (": " + ", ".join(causes) if causes else "")
    return line + (f" (and {held:,} {HELD_BACK_MEANS})" if held else "") + lost(data)


def can_raise(share: float) -> bool:
    """Whether the query share (``share``, percent) can be raised: below ``MAX_QUERY_SHARE_PERCENT``. Words that
    say to raise it are said only then."""
    return share < MAX_QUERY_SHARE_PERCENT


def limited_by(share: float, interval_ms: float | None) -> str:
    """What limited the samples when the query budget paid for no sampling all the time: the share (``share``,
    percent: ``limited by --freshness-query-share 1.5%``), or, at its maximum, the call rate, and what to raise
    then (``interval_ms``: the poll interval asked for, ms; None in files that predate it)."""
    if can_raise(share):
        return f"limited by --freshness-query-share {share:g}%"
    every = f" every {interval_ms:,.10g} ms" if interval_ms is not None else ""
    return (f"limited by the call rate: at --freshness-query-share {share:g}%, its maximum, the probe's queries are at "
            f"most its calls, too few for a poll{every} all the time; raise --freshness-poll-interval to sample "
            "more")  # fmt: skip


def lost(data: Mapping[str, Any]) -> str:
    """``; 1 worker lost before its final report (vm_3f2a, its last report 11.9 s into the test): the 3 samples it
    still looked for stay pending, never found, and what the sample rate asked of it after its last report is not in
    'asked'`` ('' when none was lost; ``_freshness.json``'s ``lost_workers``, ``lost_pending``)."""
    workers = data.get("lost_workers") or []
    if not workers:
        return ""
    named = ", ".join(f"{w['worker']}, its last report {w['last_report_s']:,.1f} s into the test" for w in workers)
    one = len(workers) == 1
    pending = data.get("lost_pending", 0)
    still = (f"the {pending:,} samples {'it' if one else 'they'} still looked for stay pending, never found, and "
             if pending else "")  # fmt: skip
    return (f"; {len(workers)} worker{'' if one else 's'} lost before {'its' if one else 'their'} final report "
            f"({named}): {still}what the sample rate asked of {'it' if one else 'them'} after "
            f"{'its' if one else 'their'} last report is not in 'asked'")  # fmt: skip


# The polls are said to have come late for their own reasons when starting late explains this share of the gap.
LATENESS_EXPLAINS = 0.5


def poll_wait(data: Mapping[str, Any]) -> str:
    """``; they came up to 122 ms apart: a poll waits for the one before it to return (the slowest QueryLog took
    21 ms), and for the Locust process's event loop when it is busy (a poll started up to 110 ms after due)`` when
    the measured bound is well beyond the poll interval and the polls' starting late explains it, or that a slow
    sample is looked for a tenth of its age apart when that does; '' otherwise (a query share that limited the polls
    has its own words). ``data``: ``_freshness.json``'s top-level fields."""
    gap, late, interval = data.get("max_poll_gap_ms"), data.get("poll_lateness_ms"), data["poll_interval_ms"]
    if gap is None or late is None or gap <= WIDER_THAN_ASKED * interval:
        return ""
    if late < LATENESS_EXPLAINS * (gap - interval):
        slowest_found = (data.get("aggregated") or {}).get("max")
        if slowest_found is not None and gap <= AGED_GAP_SHARE * slowest_found + WIDER_THAN_ASKED * interval:
            return (f"; they came up to {gap:,.0f} ms apart: a sample not visible within its window is looked for a "
                    f"tenth of its age apart (the slowest found after {slowest_found:,.0f} ms)")  # fmt: skip
        return ""
    return polls_waited(data, gap) + f" (a poll started up to {late:,.0f} ms after due)"


def polls_waited(data: Mapping[str, Any], gap: float) -> str:
    """``; they came up to 466 ms apart: a poll waits for the one before it to return (the slowest QueryLog took
    557 ms), and for the Locust process's event loop when it is busy``: why polls came ``gap`` ms apart (the SLO's
    line and ``poll_wait``); ``data``'s ``slowest_query_ms`` when the run wrote it."""
    slowest = data.get("slowest_query_ms")
    took = f" (the slowest QueryLog took {slowest:,.0f} ms)" if slowest is not None else ""
    return (f"; they came up to {gap:,.0f} ms apart: a poll waits for the one before it to return{took}, and for the "
            "Locust process's event loop when it is busy")  # fmt: skip


def failing(data: Mapping[str, Any]) -> str:
    """`` (none from 8.2 s into the test to its end, the last acknowledged at 4.7 s; UNAVAILABLE)`` when the service
    acknowledged no call the probe heard (the sampled ones, and one a second while none is sampled) from some moment
    to the end (``so far`` while the test runs), '' otherwise (``_freshness.json``'s ``failing_since_s``,
    ``last_acked_s``, ``failing_status``)."""
    since = data.get("failing_since_s")
    if since is None:
        return ""
    status = data.get("failing_status")
    until = "so far" if data.get("status") == "running" else "to its end"
    return (f" (none from {since:,.1f} s into the test {until}, the last acknowledged at "
            f"{data.get('last_acked_s', 0):,.1f} s" + (f"; {status})" if status else ")"))  # fmt: skip


def coverage(data: Mapping[str, Any]) -> str:
    """``; the figures cover samples acknowledged 2-14 s into a 30 s test: visibility later in the run was not
    measured`` when the counted samples found were acknowledged up to more than ``UNCOVERED_AFTER_SECONDS`` (and
    ``UNCOVERED_SHARE`` of the test) before the stop, ``earlier`` when from as long after ``SAMPLED_FROM_SECONDS``
    into the test, ``earlier and later`` when both, and the store was not learnt to keep up (its visibility may have
    grown: a store slower than the load); '' otherwise, and for runs whose files predate ``acked_to_s``. ``data``:
    ``_freshness.json``'s top-level fields (``acked_from_s``, ``acked_to_s``, ``test_s``, ``flush_cycle_ms``); the
    one reading of the console line, the report, the web UI and the report's gate."""
    start, end, length = data.get("acked_from_s"), data.get("acked_to_s"), data.get("test_s")
    if start is None or end is None or not length or data.get("flush_cycle_ms"):
        return ""
    uncovered = max(UNCOVERED_AFTER_SECONDS, UNCOVERED_SHARE * length)
    late_start, early_end = start - SAMPLED_FROM_SECONDS > uncovered, length - end > uncovered
    if not (late_start or early_end):
        return ""
    when = "earlier and later" if late_start and early_end else "earlier" if late_start else "later"
    return (f"; the figures cover samples acknowledged {start:,.0f}-{end:,.0f} s into a {length:,.0f} s test: "
            f"visibility {when} in the run was not measured")  # fmt: skip


def reserve_cause(reserved_at: float, share: float, found: bool = True) -> str:
    """Why sampling at the whole rate stopped ``reserved_at`` s into the test, in words a user can act on: the rest
    of the query share (``share``, percent) was kept to follow the samples already taken until they are visible after
    the stop, where the calls pay for nothing more (a store slower than the load: visibility grows with the
    backlog); not the share's rate, which paid for sampling all the time. ``found``: whether any sample became
    visible; when none did, the reserve was kept for samples pending ever longer, and no visibility is said to have
    grown."""
    why = (
        "visibility grew with the store's backlog"
        if found
        else "no sample had become visible: the oldest pending ever longer"
    )
    return (f"sampling stopped {reserved_at:,.1f} s into the test to keep the rest of --freshness-query-share "
            f"{share:g}% for following the samples taken until they are visible after the stop ({why})"
            + ("; raise the share to sample longer" if can_raise(share) else ""))  # fmt: skip


def coarse(data: Mapping[str, Any]) -> str:
    """``; a coarse figure: ...`` when the figures are those of a window coarser than the poll interval, held back
    and counted at the end because no window at the poll interval counted any (``held_released``: a test stopped
    before the share paid for one, the web UI's without a run time at 100 calls/s before ~33 s, or a service that
    stopped acknowledging calls, ``failing_since_s``), with its bound, the flush cycle it measures and what to do;
    '' otherwise. ``data``: ``_freshness.json``'s top-level fields."""
    if not data.get("held_released") or data.get("max_poll_gap_ms") is None:
        return ""
    share = data.get("query_share_percent", 1.5)
    if data.get("failing_since_s") is not None:  # the service stopped answering: the test did not stop early
        status = data.get("failing_status")
        stopped = (f"the service stopped acknowledging calls (they failed from {data['failing_since_s']:,.1f} s into "
                   f"the test to its end{f', {status}' if status else ''}),")  # fmt: skip
        what, when, remedy = "the samples", "", ""
    else:
        cycle, at = data.get("flush_cycle_ms"), data.get("precise_window_at_s")
        stopped = "the test stopped"
        what = f"the samples of one flush cycle ({cycle:,.0f} ms)" if cycle else "the samples"
        when = f" (at its call rate, about {at:,.0f} s into the test)" if at is not None else ""
        remedy = (f"; {'run longer, or raise the share,' if can_raise(share) else 'run longer'} for figures within "
                  f"about {data['poll_interval_ms']:,.10g} ms")  # fmt: skip
    return (f"; a coarse figure: {stopped} before --freshness-query-share {share:g}% paid for a sampling window at the "
            f"poll interval{when}, so these are {what} taken to learn the store's pace, polled up to "
            f"{data['max_poll_gap_ms']:,.0f} ms apart: each may be late by that much{remedy}")  # fmt: skip
