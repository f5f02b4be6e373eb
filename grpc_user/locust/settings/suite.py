"""The suite's Locust options, validated up front into one typed record.

Every value is checked before users spawn: a bad one becomes one line naming the option, the
value and what is accepted (``OptionError``), never a traceback halfway through a run.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import secrets
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from grpc_user.channels import LB_POLICIES
from grpc_user.locust.settings.action_plan import ActionError, ActionPlan, parse_plan
from grpc_user.locust.settings.rates import LOWEST_RATE, RateSchedule, parse_rate_schedule
from grpc_user.security import Security
from grpc_user.settings import (
    DEFAULT_TIMEOUT_SECONDS,
    MAX_TIMEOUT_SECONDS,
    MIN_TIMEOUT_SECONDS,
    default_max_batch_size,
    default_target,
)
from grpc_user.target import ACCEPTED_FORMS, ACCEPTED_HOSTS, parse_target, valid_authority

MIX_KINDS = ("write", "batch", "query")
DEFAULT_MIX = "write=70,batch=20,query=10"
DEFAULT_TOKEN_ENV = "GRPC_AUTH_TOKEN"
# Fixed at start-up: the web UI and /swarm may not change them (they could send a secret to any host).
SECURITY_OPTIONS = ("grpc_ca", "grpc_cert", "grpc_key", "grpc_authority", "grpc_metadata", "grpc_token_env")
# Fixed at start-up too: an action is a shell command, so /swarm could otherwise run any command on this machine.
ACTION_OPTIONS = ("action", "action_failure", "action_timeout")
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
# The audit's waits: longer than a day is a typo, and gevent's timers overflow long before infinity.
MAX_WAIT_SECONDS = 86400.0
# A capacity step's steady part (four fifths, 1.6 s at 2 s) must hold several backlog samples (every 0.25 s)
# and enough calls to judge: at 0.01 s a step measured nothing and the search "found" 50 logs/s on a service
# taking thousands.
MIN_CAPACITY_STEP_SECONDS = 2.0
# gRPC servers refuse calls whose metadata passes 8 KiB (grpc.max_metadata_size; each entry counts 32 bytes
# beyond its key and value), and some of those between 8 and 16 KiB at random.
MAX_METADATA_BYTES = 8192
METADATA_ENTRY_OVERHEAD = 32
PRINTABLE_ASCII = "printable ASCII (space to ~)"
MAX_GRPC_CONNECTIONS = 1000


class OptionError(ValueError):
    """A suite option with a value it does not accept."""

    def __init__(self, option: str, value: Any, accepted: str) -> None:
        super().__init__(f"{option}={value!r} is not valid; accepted: {accepted}")
        self.option = option


@dataclass(frozen=True)
class CapacitySettings:
    """``--capacity-search``: where the knee search starts, how it steps, and what a bad step is."""

    start: float = 100.0
    step_seconds: float = 6.0
    precision: float = 0.1
    slo_p95_ms: float = 1000.0
    slo_failure_rate: float = 0.01
    batch_sizes: tuple[int, ...] = ()
    slo_visibility_p95_ms: float = 0.0


@dataclass(frozen=True)
class SuiteSettings:
    """Validated values of every suite option."""

    batch_size: int = 100
    mix: tuple[tuple[str, int], ...] = (("write", 70), ("batch", 20), ("query", 10))
    run_id: str = ""
    grpc_timeout: float = DEFAULT_TIMEOUT_SECONDS
    message_bytes: int = 128
    seed: int | None = None
    service_name: str = "locust-loadtest"
    audit: bool = True
    audit_timeout: float = 15.0
    audit_settle: float = 6.0
    audit_allow_loss: bool = False
    max_requests: int = 0
    target_rps: float = 0.0
    arrival_rate: RateSchedule | None = None
    capacity: CapacitySettings | None = None
    freshness: bool = True
    freshness_sample_rate: float = 20.0
    freshness_poll_interval: float = 0.1
    grpc_connections: int = 1
    grpc_lb: str = ""
    security: Security = Security()
    actions: ActionPlan = ActionPlan()

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


def _whole(option: str, raw: Any, low: int, high: int | None = None) -> int:
    accepted = f"a whole number from {low} to {high}" if high is not None else f"a whole number >= {low}"
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise OptionError(option, raw, accepted) from None
    if value < low or (high is not None and value > high):
        raise OptionError(option, raw, accepted)
    return value


def _number(option: str, raw: Any, unit: str, allow_zero: bool = False, least: float = 0.0,
            most: float = math.inf) -> float:  # fmt: skip
    """A finite number of ``unit``: > 0 (>= 0 with ``allow_zero``; >= ``least`` when given) and <= ``most``."""
    inclusive = bool(least or allow_zero)
    accepted = f"a number of {unit} {'>=' if inclusive else '>'} {least:g}"
    accepted += f" and <= {most:g}" if math.isfinite(most) else ""
    try:
        value = float(str(raw).strip())
    except ValueError:
        raise OptionError(option, raw, accepted) from None
    if not math.isfinite(value) or not (value >= least if inclusive else value > least) or value > most:
        raise OptionError(option, raw, accepted)
    return value


def _text(option: str, raw: Any, default: str) -> str:
    """A string that protobuf can send (UTF-8: no lone surrogates from an undecodable environment variable)."""
    value = str(raw or default)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise OptionError(option, raw, "text that is valid UTF-8") from None
    return value


def parse_mix(raw: str) -> tuple[tuple[str, int], ...]:
    """``write=70,batch=20,query=10`` -> weights; kinds from MIX_KINDS, whole weights, some > 0."""
    accepted = f"comma-separated kind=weight with kinds {'/'.join(MIX_KINDS)} and whole weights, e.g. {DEFAULT_MIX}"
    weights: dict[str, int] = {}
    for part in str(raw).split(","):
        kind, sep, weight = part.strip().partition("=")
        if not sep or kind.strip() not in MIX_KINDS or kind.strip() in weights or not weight.strip().isdigit():
            raise OptionError("--mix", raw, accepted)
        weights[kind.strip()] = int(weight)
    if not any(weights.values()):
        raise OptionError("--mix", raw, accepted)
    return tuple(weights.items())


def _printable(text: str) -> str:
    """The first character gRPC cannot send in text metadata ('' when there is none)."""
    return next((char for char in text if not " " <= char <= "~"), "")


def parse_metadata_pairs(pairs: list[str] | str | None) -> tuple[tuple[str, str], ...]:
    """``--grpc-metadata key=value`` pairs as gRPC sends them: a lowercase key (no ``grpc-`` prefix, no ``-bin``
    binary header) and a value of printable ASCII. A bad value is named by its key only (values may be secret)."""
    if not pairs:
        return ()
    items = [pairs] if isinstance(pairs, str) else list(pairs)
    accepted = "key=value with a lowercase key of a-z 0-9 - _ . (not starting with grpc-)"
    parsed = []
    for item in items:
        key, sep, value = str(item).partition("=")
        valid_key = key and all(c.isdigit() or "a" <= c <= "z" or c in "-_." for c in key)
        if not sep or not valid_key or key.startswith("grpc-") or key.endswith("-bin"):
            raise OptionError("--grpc-metadata", item, accepted)
        if bad := _printable(value):
            raise OptionError("--grpc-metadata", f"{key}=…", f"a value of {PRINTABLE_ASCII}, the only characters "
                              f"gRPC sends in text metadata ({bad!r} is not)")  # fmt: skip
        parsed.append((key, value))
    return tuple(parsed)


def _readable_file(option: str, path: str) -> str:
    if path and not os.path.isfile(path):
        raise OptionError(option, path, "the path of a readable PEM file")
    return path


def _check_pem(ca: str, cert: str, key: str) -> None:
    """Load the TLS files as gRPC will (OpenSSL, through Python's ssl): a file that is no PEM, or a key that does
    not match its certificate, is named now instead of failing every handshake later."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca:
        try:
            context.load_verify_locations(cafile=ca)
        except (ssl.SSLError, OSError, ValueError) as error:
            raise OptionError("--grpc-ca", ca, f"a PEM file of CA certificates ({error.args[-1]})") from None
    if cert:
        try:
            context.load_cert_chain(cert, key, password=lambda: b"")
        except (ssl.SSLError, OSError, ValueError) as error:
            raise OptionError("--grpc-cert", cert, "a PEM certificate whose private key is the unencrypted PEM "
                              f"--grpc-key ({error.args[-1]})") from None  # fmt: skip


def _metadata_size(security: Security) -> int:
    return sum(len(key) + len(value) + METADATA_ENTRY_OVERHEAD for key, value in security.call_metadata())


def parse_security(options: argparse.Namespace) -> Security:
    """TLS files, authority, metadata pairs and the token named by ``--grpc-token-env``, checked against what gRPC
    accepts; the token is never shown, not even in an error."""
    cert = _readable_file("--grpc-cert", getattr(options, "grpc_cert", "") or "")
    key = _readable_file("--grpc-key", getattr(options, "grpc_key", "") or "")
    if bool(cert) != bool(key):
        raise OptionError("--grpc-cert" if cert else "--grpc-key", cert or key, "--grpc-cert and --grpc-key together")
    ca = _readable_file("--grpc-ca", getattr(options, "grpc_ca", "") or "")
    _check_pem(ca, cert, key)
    authority = getattr(options, "grpc_authority", "") or ""
    if authority and not valid_authority(authority):
        raise OptionError("--grpc-authority", authority, f"host or host:port, the host being {ACCEPTED_HOSTS}")
    token_env = getattr(options, "grpc_token_env", DEFAULT_TOKEN_ENV) or DEFAULT_TOKEN_ENV
    token = os.environ.get(token_env, "")
    if bad := _printable(token):
        raise OptionError("--grpc-token-env", token_env, f"a variable holding a token of {PRINTABLE_ASCII}, the only "
                          f"characters gRPC sends in the authorization header (its token holds {bad!r})")  # fmt: skip
    metadata = parse_metadata_pairs(getattr(options, "grpc_metadata", None))
    security = Security(ca=ca, cert=cert, key=key, authority=authority, metadata=metadata, token=token)
    if (size := _metadata_size(security)) > MAX_METADATA_BYTES:
        raise OptionError("--grpc-metadata", f"{len(security.metadata)} pairs, {size} bytes in all",
                          f"at most {MAX_METADATA_BYTES} bytes of metadata in all, the bearer token's included "
                          f"({METADATA_ENTRY_OVERHEAD} per pair beyond its key and value): gRPC servers refuse calls "
                          "carrying more")  # fmt: skip
    return security


def _arrival_rate(raw: Any, target_rps: float) -> RateSchedule | None:
    """Off when empty (the default); ``0`` is refused like ``0.0``, never read as off."""
    if raw is None or not str(raw).strip():
        return None
    try:
        schedule = parse_rate_schedule(str(raw))
    except ValueError as error:
        raise OptionError("--arrival-rate", raw, str(error)) from None
    if target_rps:
        raise OptionError(
            "--arrival-rate", raw, "either --arrival-rate (open model) or --target-rps (pacing), not both"
        )
    return schedule


def _batch_sizes(raw: Any, max_batch: int) -> tuple[int, ...]:
    if raw in (None, ""):
        return ()
    accepted = f"comma-separated batch sizes from 1 to {max_batch}, e.g. 10,100,500,1000"
    try:
        sizes = tuple(int(part) for part in str(raw).split(","))
    except ValueError:
        raise OptionError("--batch-sizes", raw, accepted) from None
    if not all(1 <= size <= max_batch for size in sizes):
        raise OptionError("--batch-sizes", raw, accepted)
    return sizes


def _capacity(
    options: argparse.Namespace, arrival_rate: RateSchedule | None, target_rps: float, max_batch: int
) -> CapacitySettings | None:
    get = lambda name, default: getattr(options, name, default)  # noqa: E731
    sizes = _batch_sizes(get("batch_sizes", ""), max_batch)
    if not get("capacity_search", False):
        if sizes:
            raise OptionError("--batch-sizes", get("batch_sizes", ""), "with --capacity-search only")
        return None
    if arrival_rate is not None:
        raise OptionError("--arrival-rate", str(arrival_rate), "no --arrival-rate with --capacity-search (it sets "
                          "the rate itself)")  # fmt: skip
    if target_rps:
        raise OptionError("--target-rps", get("target_rps", 0), "0 with --capacity-search: the search offers its "
                          "own rates in the open model, which pacing would hold back")  # fmt: skip
    precision = _number("--capacity-precision", get("capacity_precision", 0.1), "a fraction")
    if precision >= 1:
        raise OptionError("--capacity-precision", get("capacity_precision", 0.1), "a fraction from 0 to 1")
    failure_rate = _number("--slo-failure-rate", get("slo_failure_rate", 0.01), "a fraction", allow_zero=True)
    if failure_rate > 1:
        raise OptionError("--slo-failure-rate", get("slo_failure_rate", 0.01), "a fraction from 0 to 1")
    return CapacitySettings(
        start=_number("--capacity-start", get("capacity_start", 100), "calls per second", least=LOWEST_RATE),
        step_seconds=_number(
            "--capacity-step",
            get("capacity_step", 6),
            "seconds",
            least=MIN_CAPACITY_STEP_SECONDS,
            most=MAX_WAIT_SECONDS,
        ),
        precision=precision,
        slo_p95_ms=_number("--slo-p95-ms", get("slo_p95_ms", 1000), "milliseconds"),
        slo_failure_rate=failure_rate,
        batch_sizes=sizes,
        slo_visibility_p95_ms=_number(
            "--slo-visibility-p95-ms", get("slo_visibility_p95_ms", 0), "milliseconds", allow_zero=True
        ),
    )


def parse_actions(options: argparse.Namespace) -> ActionPlan:
    """``--action``, ``--action-failure``, ``--action-timeout`` as an ActionPlan; raise OptionError."""
    get = lambda name, default: getattr(options, name, default)  # noqa: E731
    try:
        return parse_plan(get("action", None), get("action_failure", "continue"), get("action_timeout", 300))
    except ActionError as error:
        raise OptionError(error.option, error.value, error.accepted) from None


def _lb_policy(raw: Any) -> str:
    if raw in (None, ""):
        return ""
    if str(raw).strip() not in LB_POLICIES:
        raise OptionError("--grpc-lb", raw, f"{' or '.join(LB_POLICIES)} (grpc's default: pick_first)")
    return str(raw).strip()


def settings_from_options(options: argparse.Namespace | None, security: Security | None = None,
                          actions: ActionPlan | None = None) -> SuiteSettings:  # fmt: skip
    """Validate the parsed Locust options into SuiteSettings; raise OptionError on the first bad one.

    ``security``, ``actions``: settings fixed at start-up, used instead of what the options say now.
    """
    if options is None:
        return SuiteSettings()
    get = lambda name, default: getattr(options, name, default)  # noqa: E731
    max_batch = default_max_batch_size()
    seed_raw = get("seed", "")
    target_rps = _number("--target-rps", get("target_rps", 0), "requests per second (0: no pacing)", allow_zero=True)
    arrival_rate = _arrival_rate(get("arrival_rate", ""), target_rps)
    capacity = _capacity(options, arrival_rate, target_rps, max_batch)
    if capacity is not None and capacity.slo_visibility_p95_ms and get("no_freshness", False):
        raise OptionError("--slo-visibility-p95-ms", get("slo_visibility_p95_ms", 0), "a freshness SLO needs the "
                          "freshness probe: not with --no-freshness")  # fmt: skip
    return SuiteSettings(
        batch_size=_whole("--batch-size", get("batch_size", 100), 1, max_batch),
        mix=parse_mix(get("mix", DEFAULT_MIX)),
        run_id=_text("--run-id", get("run_id", ""), ""),
        grpc_timeout=_number(
            "--grpc-timeout",
            get("grpc_timeout", DEFAULT_TIMEOUT_SECONDS),
            "seconds",
            least=MIN_TIMEOUT_SECONDS,
            most=MAX_TIMEOUT_SECONDS,
        ),
        message_bytes=_whole("--message-bytes", get("message_bytes", 128), 0, MAX_MESSAGE_BYTES),
        seed=None if seed_raw in ("", None) else _whole("--seed", seed_raw, 0),
        service_name=_text("--service-name", get("service_name", ""), "locust-loadtest"),
        audit=not get("no_audit", False),
        audit_timeout=_number("--audit-timeout", get("audit_timeout", 15.0), "seconds", most=MAX_WAIT_SECONDS),
        audit_settle=_number("--audit-settle", get("audit_settle", 6.0), "seconds", most=MAX_WAIT_SECONDS),
        audit_allow_loss=bool(get("audit_allow_loss", False)),
        max_requests=_whole("--max-requests", get("max_requests", 0), 0),
        target_rps=target_rps,
        arrival_rate=arrival_rate,
        capacity=capacity,
        freshness=not get("no_freshness", False),
        freshness_sample_rate=_number(
            "--freshness-sample-rate", get("freshness_sample_rate", 20.0), "samples per second"
        ),
        freshness_poll_interval=_number("--freshness-poll-interval", get("freshness_poll_interval", 0.1), "seconds"),
        grpc_connections=_whole("--grpc-connections", get("grpc_connections", 1), 1, MAX_GRPC_CONNECTIONS),
        grpc_lb=_lb_policy(get("grpc_lb", "")),
        security=security if security is not None else parse_security(options),
        actions=actions if actions is not None else parse_actions(options),
    )


def check_users(options: argparse.Namespace) -> None:
    """Locust's ``-u`` and ``-r`` as a test takes them (Locust itself would fail with a traceback in a greenlet)."""
    users = getattr(options, "num_users", None)
    if users is not None and (isinstance(users, bool) or not isinstance(users, int) or users < 0):
        raise OptionError("-u/--users", users, "a whole number >= 0")
    spawn_rate = getattr(options, "spawn_rate", None)
    if spawn_rate is not None:
        _number("-r/--spawn-rate", spawn_rate, "users per second")


def check_target(host: str | None, security: Security) -> None:
    """``--host`` (else GRPC_SERVER_HOST/PORT) as the suite and gRPC take it; TLS files need a ``grpcs://`` target."""
    text = host or default_target()
    try:
        target = parse_target(text)
    except ValueError:
        raise OptionError("--host", text, f"{ACCEPTED_FORMS}, the host being {ACCEPTED_HOSTS}, the port "
                          "1-65535") from None  # fmt: skip
    tls_files = [(option, path) for option, path in (("--grpc-ca", security.ca), ("--grpc-cert", security.cert))
                 if path]  # fmt: skip
    if tls_files and not target.tls:
        option, path = tls_files[0]
        raise OptionError(option, path, f"with a grpcs:// --host only: {target} is plaintext, and the file would be "
                          "ignored")  # fmt: skip


def check_workload(settings: SuiteSettings, user_classes: Iterable[type]) -> None:
    """Options the test's users would ignore: ``--batch-sizes`` needs a user class that sends ``--batch-size``
    batches (``uses_batch_size``), or every search would measure the same thing."""
    capacity = settings.capacity
    classes = list(user_classes)
    if capacity is None or not capacity.batch_sizes or not classes:
        return
    if not any(getattr(user, "uses_batch_size", False) for user in classes):
        names = ", ".join(user.__name__ for user in classes)
        raise OptionError("--batch-sizes", ",".join(map(str, capacity.batch_sizes)), "a workload that sends "
                          f"--batch-size batches (locustfiles/batch.py, mixed.py); {names} sends none")  # fmt: skip


def settings_for_test(options: argparse.Namespace | None, host: str | None, security: Security | None,
                      user_classes: Iterable[type], actions: ActionPlan | None = None) -> SuiteSettings:  # fmt: skip
    """The one validation of a test, shared by the command line (before any user spawns) and the web UI's
    ``/swarm`` (before it answers): Locust's ``-u``/``-r``, the suite's options, the target and the workload.
    ``security``, ``actions``: fixed at start-up. Raises OptionError, one line naming the option, the value
    and what is accepted."""
    if options is not None:
        check_users(options)
    settings = settings_from_options(options, security, actions)
    check_target(host, settings.security)
    check_workload(settings, user_classes)
    return settings
