"""The one validation of a test (``settings_for_test``), shared by the command line (before any user spawns) and the
web UI's ``/swarm`` (before it answers): Locust's ``-u``/``-r``, the suite's options (``settings_from_options``), the
target and the workload. Each refusal is one OptionError line naming the option, the value and what is accepted."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable

from grpc_user.locust.settings.action_plan import ActionPlan
from grpc_user.locust.settings.suite import SuiteSettings, settings_from_options
from grpc_user.locust.settings.values import OptionError, Refused, number
from grpc_user.security import Security
from grpc_user.settings import default_target
from grpc_user.target import ACCEPTED_FORMS, ACCEPTED_HOSTS, parse_target


def check_users(options: argparse.Namespace) -> None:
    """Locust's ``-u`` and ``-r`` as a test takes them (Locust itself would fail with a traceback in a greenlet)."""
    users = getattr(options, "num_users", None)
    if users is not None and (isinstance(users, bool) or not isinstance(users, int) or users < 0):
        raise OptionError("-u/--users", users, "a whole number >= 0")
    spawn_rate = getattr(options, "spawn_rate", None)
    if spawn_rate is not None:
        try:
            number("users per second")(spawn_rate)
        except Refused as refused:
            raise OptionError("-r/--spawn-rate", spawn_rate, refused.accepted) from None


def _default_target() -> str:
    """``GRPC_SERVER_HOST:GRPC_SERVER_PORT``, the seed clients' variables, for a test without ``--host``."""
    try:
        return default_target()
    except ValueError:
        raise OptionError("GRPC_SERVER_PORT", os.environ.get("GRPC_SERVER_PORT"), "a port from 1 to 65535 (the "
                          "target's port when --host is not given)") from None  # fmt: skip


def check_target(host: str | None, security: Security) -> None:
    """``--host`` (else GRPC_SERVER_HOST/PORT) as the suite and gRPC take it; TLS files need a ``grpcs://`` target."""
    text = host or _default_target()
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


def check_audit(settings: SuiteSettings) -> None:
    """``--audit-settle`` at most half of ``--audit-timeout``: the audit writes its barrier, the only proof of a loss,
    once this run's stored count stood still for the settle time, and the barrier needs time of its own to be stored
    (a flush); a settle time that leaves it less (4.9 s of a 5 s timeout) makes every real loss ``unsettled``."""
    if settings.audit and settings.audit_settle > settings.audit_timeout / 2:
        raise OptionError("--audit-settle", f"{settings.audit_settle:g}", f"at most half of --audit-timeout "
                          f"({settings.audit_timeout:g}): the audit proves a loss only after this run's stored count "
                          "stood still that long and the service then stored its barrier, so with less time left "
                          "a real loss could only be unsettled; lower --audit-settle or raise "
                          "--audit-timeout")  # fmt: skip


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
    check_audit(settings)
    return settings
