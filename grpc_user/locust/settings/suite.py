"""The suite's settings: ``SuiteSettings`` declares every suite option once (flag, parser, default, help, ``--help``
group, web UI, ``LOCUST_*`` variable: ``table.option``) and holds their validated values.

Every value is checked before users spawn: a bad one becomes one line naming the option, the value and what is
accepted (``OptionError``), never a traceback halfway through a run. ``checks.settings_for_test`` is the one
validation of a test, run by the command line and by the web UI's ``/swarm``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

from grpc_user.histograms import HIGHEST_US
from grpc_user.locust.settings.action_plan import ActionPlan
from grpc_user.locust.settings.rates import HIGHEST_RATE, LOWEST_RATE, RateSchedule, parse_rate_schedule
from grpc_user.locust.settings.security import SecurityOptions
from grpc_user.locust.settings.table import Option, option, options_of, read_settings, section
from grpc_user.locust.settings.values import (
    LB_POLICY,
    OptionError,
    Refused,
    fraction,
    mix,
    negated,
    number,
    optional,
    switch,
    text,
    whole,
)
from grpc_user.run_files.freshness_words import MAX_QUERY_SHARE_PERCENT
from grpc_user.security import Security
from grpc_user.settings import (
    DEFAULT_TIMEOUT_SECONDS,
    MAX_TIMEOUT_SECONDS,
    MIN_TIMEOUT_SECONDS,
    default_max_batch_size,
)

WORKLOAD = "Workload and test data"
CALLS = "gRPC calls"
LOAD = "Load model"
CAPACITY = "Capacity search (--capacity-search)"
AUDIT = "Delivery audit"
FRESHNESS = "Freshness (visibility latency)"
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
DEFAULT_SERVICE_NAME = "locust-loadtest"
# The audit's waits: longer than a day is a typo, and gevent's timers overflow long before infinity.
MAX_WAIT_SECONDS = 86400.0
# A capacity step's steady part (four fifths, 1.6 s at 2 s) must hold several backlog samples (every 0.25 s)
# and enough calls to judge: at 0.01 s a step measured nothing and the search "found" 50 logs/s on a service
# taking thousands.
MIN_CAPACITY_STEP_SECONDS = 2.0
MAX_GRPC_CONNECTIONS = 1000
# A latency SLO above the HDR histograms' highest value (an hour) could never break: every latency is at most that.
MAX_SLO_MS = HIGHEST_US / 1000
# Freshness: samples per second in total (at most 10,000 pend at once: 10 s of a service that stores nothing), the
# time between polls (a QueryLog takes milliseconds; more than 10 s would be the error bound of every figure, against a
# flush period of seconds) and the query share (below 0.01%, 1 query per 10,000 calls, the probe would sample nothing).
MAX_FRESHNESS_SAMPLE_RATE = 1000.0
MIN_FRESHNESS_POLL_SECONDS = 0.01
MAX_FRESHNESS_POLL_SECONDS = 10.0
MIN_FRESHNESS_QUERY_PERCENT = 0.01


def max_batch_size() -> int:
    """``MAX_BATCH_SIZE``, the client's largest batch (1000 when unset); OptionError naming a bad value."""
    try:
        return default_max_batch_size()
    except ValueError:
        raise OptionError("MAX_BATCH_SIZE", os.environ.get("MAX_BATCH_SIZE"), "a whole number >= 1: the most entries "
                          "in one BatchWriteLog") from None  # fmt: skip


def batch_size_words() -> str:
    """What ``--batch-size`` accepts."""
    return f"a whole number from 1 to {max_batch_size()}"


def batch_sizes_words() -> str:
    """What ``--batch-sizes`` accepts."""
    return f"comma-separated batch sizes from 1 to {max_batch_size()}, e.g. 10,100,500,1000"


def _batch_size(raw: Any) -> int:
    """A whole number >= 1. Its upper bound, MAX_BATCH_SIZE, is checked with the other options
    (``_check_combinations``): read here, it would be read when this module is imported, for the default."""
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise Refused(batch_size_words()) from None
    if value < 1:
        raise Refused(batch_size_words())
    return value


def _batch_sizes(raw: Any) -> tuple[int, ...]:
    """``10,100,500``: whole numbers >= 1 (MAX_BATCH_SIZE checked with the other options); empty -> ()."""
    if raw is None or not str(raw).strip():
        return ()
    try:
        sizes = tuple(int(part) for part in str(raw).split(","))
    except ValueError:
        raise Refused(batch_sizes_words()) from None
    if min(sizes) < 1:
        raise Refused(batch_sizes_words())
    return sizes


def _arrival_rate(raw: Any) -> RateSchedule | None:
    """Off when empty (the default); ``0`` is refused like ``0.0``, never read as off."""
    if raw is None or not str(raw).strip():
        return None
    try:
        return parse_rate_schedule(str(raw))
    except ValueError as error:
        raise Refused(str(error)) from None


CAPACITY_SEARCH = Option(
    "--capacity-search",
    parse=switch,
    default=False,
    help=(
        "find the highest rate the service sustains: steps of the open model's "
        "arrival rate, a geometric ramp then a bisection; writes capacity.json beside the --csv files"
    ),
    group=CAPACITY,
    kind="switch",
)


@dataclass(frozen=True)
class CapacitySettings:
    """``--capacity-search``: where the knee search starts, how it steps, and what a bad step is."""

    start: float = option(
        "--capacity-start",
        parse=number("calls per second", least=LOWEST_RATE, most=HIGHEST_RATE),
        default="100",
        help="first offered rate of the capacity search, calls/s",
        group=CAPACITY,
        metavar="R",
    )
    step_seconds: float = option(
        "--capacity-step",
        parse=number("seconds", least=MIN_CAPACITY_STEP_SECONDS, most=MAX_WAIT_SECONDS),
        default="6",
        help="seconds per step of the capacity search (the first fifth is warm-up)",
        group=CAPACITY,
        metavar="S",
    )
    precision: float = option(
        "--capacity-precision",
        parse=fraction(allow_zero=False, allow_one=False),
        default="0.1",
        help="the knee's relative half-width at which the search stops",
        group=CAPACITY,
        metavar="F",
    )
    slo_p95_ms: float = option(
        "--slo-p95-ms",
        parse=number("milliseconds", most=MAX_SLO_MS),
        default="1000",
        help="a step is bad above this p95 (from the scheduled start)",
        group=CAPACITY,
        metavar="MS",
    )
    slo_failure_rate: float = option(
        "--slo-failure-rate",
        parse=fraction(allow_zero=True, allow_one=True),
        default="0.01",
        help="a step is bad above this failure rate (0.01: one call in a hundred)",
        group=CAPACITY,
        metavar="F",
    )
    batch_sizes: tuple[int, ...] = option(
        "--batch-sizes",
        parse=_batch_sizes,
        default="",
        help="one search per batch size (batch and mixed workloads), e.g. 10,100,500,1000",
        group=CAPACITY,
        shown_default="one search at --batch-size",
        metavar="N,N,…",
    )
    slo_visibility_p95_ms: float = option(
        "--slo-visibility-p95-ms",
        parse=number("milliseconds", allow_zero=True, most=MAX_SLO_MS),
        default="0",
        help=(
            "a step is bad when its logs' "
            "visibility latency p95 (acknowledgement to the first QueryLog that returns them) is above this; 0: no "
            "freshness SLO"
        ),
        group=CAPACITY,
        metavar="MS",
    )


@dataclass(frozen=True)
class SuiteSettings:
    """Every suite option, declared once, and its validated value: read from Locust's parsed options by
    ``settings_from_options``; the defaults are the options' defaults."""

    batch_size: int = option(
        "--batch-size",
        parse=_batch_size,
        default="100",
        help="entries per BatchWriteLog, 1..MAX_BATCH_SIZE (1000)",
        group=WORKLOAD,
        metavar="N",
    )
    mix: tuple[tuple[str, int], ...] = option(
        "--mix",
        parse=mix,
        default="write=70,batch=20,query=10",
        help="weights of the mixed workload's calls",
        group=WORKLOAD,
        metavar="write=W,batch=B,query=Q",
    )
    message_bytes: int = option(
        "--message-bytes",
        parse=whole(0, MAX_MESSAGE_BYTES),
        default="128",
        help="size of each generated log message, bytes",
        group=WORKLOAD,
        metavar="N",
    )
    seed: int | None = option(
        "--seed",
        parse=optional(whole(0)),
        default="",
        help="seed of the generated test data (per user: seed and user index)",
        group=WORKLOAD,
        shown_default="random",
        metavar="N",
    )
    service_name: str = option(
        "--service-name",
        parse=text(DEFAULT_SERVICE_NAME),
        default=DEFAULT_SERVICE_NAME,
        help="service_name of the generated logs",
        group=WORKLOAD,
        metavar="NAME",
    )
    run_id: str = option(
        "--run-id",
        parse=text(),
        default="",
        help="tag every log with metadata run_id=ID; printed at the start",
        group=WORKLOAD,
        shown_default="generated per test",
        metavar="ID",
    )
    grpc_timeout: float = option(
        "--grpc-timeout",
        parse=number("seconds", least=MIN_TIMEOUT_SECONDS, most=MAX_TIMEOUT_SECONDS),
        default=f"{DEFAULT_TIMEOUT_SECONDS:g}",
        help="deadline of every call, seconds",
        group=CALLS,
        metavar="S",
    )
    grpc_connections: int = option(
        "--grpc-connections",
        parse=whole(1, MAX_GRPC_CONNECTIONS),
        default="1",
        help=(
            "gRPC channels (HTTP/2 connections) each Locust "
            "process opens to the target; each user keeps to one (user index modulo N)"
        ),
        group=CALLS,
        metavar="N",
    )
    grpc_lb: str = option(
        "--grpc-lb",
        parse=LB_POLICY,
        default="",
        help=(
            "grpc's load-balancing policy over the addresses the target resolves to: "
            "round_robin or pick_first; e.g. with --host dns:///name:port or ipv4:a:port,b:port"
        ),
        group=CALLS,
        shown_default="grpc's default (pick_first)",
        metavar="round_robin|pick_first",
    )
    max_requests: int = option(
        "--max-requests",
        parse=whole(0),
        default="0",
        help="stop after this many calls in total (0: no limit)",
        group=LOAD,
        metavar="N",
    )
    target_rps: float = option(
        "--target-rps",
        parse=number("requests per second (0: no pacing)", allow_zero=True, most=HIGHEST_RATE),
        default="0",
        help=(
            "pacing (closed "
            "model): each user paces itself to its share of this many calls/s and waits for its answers, so a slow "
            "service lowers the rate; 0: no pacing"
        ),
        group=LOAD,
        metavar="R",
    )
    arrival_rate: RateSchedule | None = option(
        "--arrival-rate",
        parse=_arrival_rate,
        default="",
        help=(
            "open model: calls start at this rate in total, on a clock that does "
            "not wait for answers; -u is then the most calls in flight; R, or a ramp START:END:DURATION[:STEPS]"
        ),
        group=LOAD,
        metavar="R",
    )
    capacity: CapacitySettings | None = section(CapacitySettings, None, switch=CAPACITY_SEARCH)
    audit: bool = option(
        "--no-audit",
        parse=negated,
        default=False,
        help="skip the delivery audit at the end (targets without QueryLog: add --no-freshness)",
        group=AUDIT,
        kind="switch",
    )
    audit_timeout: float = option(
        "--audit-timeout",
        parse=number("seconds", most=MAX_WAIT_SECONDS),
        default="15",
        help="seconds to wait for acknowledged logs to be stored",
        group=AUDIT,
        metavar="S",
    )
    audit_settle: float = option(
        "--audit-settle",
        parse=number("seconds", most=MAX_WAIT_SECONDS),
        default="6",
        help=(
            "seconds this run's stored count must stand still before the audit writes its barrier, a log whose "
            "storage proves the logs still missing lost (another every 2 s while none is stored)"
        ),
        group=AUDIT,
        metavar="S",
    )
    audit_allow_loss: bool = option(
        "--audit-allow-loss",
        parse=switch,
        default=False,
        help="do not fail the run when acknowledged logs were lost",
        group=AUDIT,
        kind="switch",
    )
    freshness: bool = option(
        "--no-freshness",
        parse=negated,
        default=False,
        help="do not measure visibility latency (acknowledgement to the first QueryLog that returns a log)",
        group=FRESHNESS,
        kind="switch",
    )
    freshness_sample_rate: float = option(
        "--freshness-sample-rate",
        parse=number("samples per second", most=MAX_FRESHNESS_SAMPLE_RATE),
        default="20",
        help="acknowledged logs sampled per second in total for visibility latency (more than 0, at most 1000)",
        group=FRESHNESS,
        metavar="R",
    )
    freshness_poll_interval: float = option(
        "--freshness-poll-interval",
        parse=number("seconds", least=MIN_FRESHNESS_POLL_SECONDS, most=MAX_FRESHNESS_POLL_SECONDS),
        default="0.1",
        help=(
            "the seconds between two of the freshness probe's queries while a sample is pending (0.01 to 10): the "
            "error bound of a sample found within its window's share (one found later has a wider bound, stated)"
        ),
        group=FRESHNESS,
        metavar="S",
    )
    freshness_query_share: float = option(
        "--freshness-query-share",
        parse=number("percent", least=MIN_FRESHNESS_QUERY_PERCENT, most=MAX_QUERY_SHARE_PERCENT),
        default="1.5",
        help=(
            "the freshness probe's queries are at most this percent (0.01 to 100) of its process's calls, plus one, "
            "the polls after the stop included; it limits how many logs are sampled (in windows, below ~830 calls/s at "
            "1.5) and, for samples slower than their window was funded for, how often they are looked for"
        ),
        group=FRESHNESS,
        metavar="P",
    )
    actions: ActionPlan = section(ActionPlan, ActionPlan())
    security: Security = section(SecurityOptions, Security(), build=SecurityOptions.security)

    def public(self) -> dict[str, Any]:
        """The settings as JSON-ready data for reports, with secrets left out."""
        data = dataclasses.asdict(self)
        security = data.pop("security")
        data.update(self.actions.public())
        data["mix"] = dict(self.mix)
        data["arrival_rate"] = str(self.arrival_rate) if self.arrival_rate else ""
        data["capacity"] = dataclasses.asdict(self.capacity) if self.capacity else None
        data["grpc_metadata_keys"] = [key for key, _ in self.security.metadata]
        data["grpc_token"] = "set" if self.security.token else "unset"
        data["grpc_tls"] = {name: security[name] for name in ("ca", "cert", "key", "authority")}
        return data


# The one table: every suite option in declaration order, as Locust's parser, ``--help``, the web UI and the README
# show them.
OPTIONS: tuple[Option, ...] = tuple(options_of(SuiteSettings))
BY_FLAG = {declared.flag: declared for declared in OPTIONS}
BY_DEST = {declared.dest: declared for declared in OPTIONS}
# The options only the freshness probe reads (refused with --no-freshness).
FRESHNESS_VALUES = tuple(
    declared.flag for declared in OPTIONS if declared.group == FRESHNESS and declared.kind == "value"
)
# Fixed at start-up: the web UI and /swarm may not change them (they could send a secret to any host, or run any
# command on this machine).
SECURITY_OPTIONS = tuple(item.dest for item in options_of(SecurityOptions))
ACTION_OPTIONS = tuple(item.dest for item in options_of(ActionPlan))


def new_run_id() -> str:
    """A run id that sorts by time and is unique enough to find one run's logs again."""
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{secrets.token_hex(3)}"


def choose_run_id(typed: str, used: set[str]) -> str:
    """This test's run id: the one typed (form or ``--run-id``), numbered if an earlier test of this
    process used it, so two tests never count each other's logs; generated when none was typed."""
    if not typed:
        return new_run_id()
    run_id, number = typed, 1
    while run_id in used:
        number += 1
        run_id = f"{typed}.{number}"
    return run_id


def parse_security(options: argparse.Namespace) -> Security:
    """The security options as the client's Security (``SecurityOptions.security``); OptionError."""
    parsed: SecurityOptions = read_settings(SecurityOptions, options)
    return parsed.security()


def parse_actions(options: argparse.Namespace) -> ActionPlan:
    """``--action``, ``--action-failure``, ``--action-timeout`` as an ActionPlan; OptionError."""
    plan: ActionPlan = read_settings(ActionPlan, options)
    return plan


def _refuse_unread(options: argparse.Namespace, flags: tuple[str, ...], accepted: str) -> None:
    """Options that nothing reads with the switches given, set away from their defaults, have no effect: refused, one
    line (``--no-freshness --freshness-sample-rate 5`` measured nothing, silently)."""
    for flag in flags:
        declared = BY_FLAG[flag]
        raw = getattr(options, declared.dest, declared.default)
        if declared.value(raw) != declared.value(declared.default):
            raise OptionError(flag, raw, accepted)


def _check_switched_off(settings: SuiteSettings, options: argparse.Namespace) -> None:
    """``--no-freshness`` and ``--no-audit`` with options only the probe or the audit reads (the probe without an
    audit still waits by ``--audit-timeout`` and ``--audit-settle``)."""
    if not settings.freshness:
        _refuse_unread(options, FRESHNESS_VALUES, "with the freshness probe only (--no-freshness turns it off: it "
                       "would have no effect)")  # fmt: skip
    if not settings.audit:
        _refuse_unread(options, ("--audit-allow-loss",), "with the delivery audit only (--no-audit turns it off: it "
                       "would have no effect)")  # fmt: skip
    if not settings.audit and not settings.freshness:
        _refuse_unread(options, ("--audit-timeout", "--audit-settle"), "with the delivery audit or the freshness "
                       "probe only (--no-audit and --no-freshness turn both off: it would have no effect)")  # fmt: skip


def _check_forked_workers_port(options: argparse.Namespace) -> None:
    """``--processes`` forks workers that connect to ``--master-port``, wherever ``--master-bind-port`` has the
    master listen (Locust's own): with two ports the master waited for workers that connected to another one, or to
    the next test's master on it."""
    bound, port = getattr(options, "master_bind_port", None), getattr(options, "master_port", None)
    if getattr(options, "processes", None) and not getattr(options, "worker", False) and bound != port:
        raise OptionError("--master-bind-port", bound, f"with --processes, the port its forked workers connect to, "
                          f"--master-port ({port}): give both the same port")  # fmt: skip


def _check_combinations(settings: SuiteSettings, options: argparse.Namespace) -> None:
    """What each value accepts alone but not with the others."""
    raw = lambda name: getattr(options, name, BY_DEST[name].default)  # noqa: E731
    _check_switched_off(settings, options)
    _check_forked_workers_port(options)
    if settings.batch_size > max_batch_size():
        raise OptionError("--batch-size", raw("batch_size"), batch_size_words())
    if settings.arrival_rate is not None and settings.target_rps:
        raise OptionError(
            "--arrival-rate",
            raw("arrival_rate"),
            "either --arrival-rate (open model) or --target-rps (pacing), not both",
        )
    if settings.capacity is None:  # its options set while it is off are refused by read_settings
        return
    if settings.capacity.batch_sizes and max(settings.capacity.batch_sizes) > max_batch_size():
        raise OptionError("--batch-sizes", raw("batch_sizes"), batch_sizes_words())
    if settings.arrival_rate is not None:
        raise OptionError(
            "--arrival-rate",
            str(settings.arrival_rate),
            "no --arrival-rate with --capacity-search (it sets the rate itself)",
        )
    if settings.target_rps:
        raise OptionError(
            "--target-rps",
            raw("target_rps"),
            "0 with --capacity-search: the search offers its own rates in the open model, which pacing would hold back",
        )
    if settings.capacity.slo_visibility_p95_ms and not settings.freshness:
        raise OptionError(
            "--slo-visibility-p95-ms",
            raw("slo_visibility_p95_ms"),
            "a freshness SLO needs the freshness probe: not with --no-freshness",
        )
    _check_slo_poll_interval(settings, options)


def _check_slo_poll_interval(settings: SuiteSettings, options: argparse.Namespace) -> None:
    """A freshness SLO at least twice the poll interval (each visibility figure is late by up to it). The refusal
    names the option the user gave: the SLO when the poll interval is the default or no interval allows the SLO
    (``--slo-visibility-p95-ms 0.001`` was refused as ``--freshness-poll-interval='0.1'``), else the interval."""
    assert settings.capacity is not None  # checked by the caller
    slo_ms, interval = settings.capacity.slo_visibility_p95_ms, settings.freshness_poll_interval
    if not slo_ms or interval <= slo_ms / 2000:
        return
    declared = BY_DEST["freshness_poll_interval"]
    raw_interval = getattr(options, declared.dest, declared.default)
    interval_given = declared.value(raw_interval) != declared.value(declared.default)
    if interval_given and slo_ms >= 2000 * MIN_FRESHNESS_POLL_SECONDS:
        raise OptionError("--freshness-poll-interval", raw_interval, f"at most half of --slo-visibility-p95-ms "
                          f"({slo_ms:g} ms): each visibility figure is late by up to the poll interval")  # fmt: skip
    declared = BY_DEST["slo_visibility_p95_ms"]
    raise OptionError("--slo-visibility-p95-ms", getattr(options, declared.dest, declared.default),
                      f"0 (no freshness SLO) or at least {2000 * interval:g} ms, twice --freshness-poll-interval "
                      f"({interval:g} s): each visibility figure is late by up to the poll interval"
                      + ("" if interval_given or interval <= MIN_FRESHNESS_POLL_SECONDS else
                         f"; at least {2000 * MIN_FRESHNESS_POLL_SECONDS:g} ms with --freshness-poll-interval "
                         f"{MIN_FRESHNESS_POLL_SECONDS:g}"))  # fmt: skip


def settings_from_options(
    options: argparse.Namespace | None, security: Security | None = None, actions: ActionPlan | None = None
) -> SuiteSettings:
    """Validate the parsed Locust options into SuiteSettings; raise OptionError on the first bad one.

    ``security``, ``actions``: settings fixed at start-up, used instead of what the options say now.
    """
    if options is None:
        return SuiteSettings()
    fixed = {name: value for name, value in (("security", security), ("actions", actions)) if value is not None}
    settings: SuiteSettings = read_settings(SuiteSettings, options, fixed)
    _check_combinations(settings, options)
    return settings
