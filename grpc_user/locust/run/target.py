"""The run's target, and one unary call to it over the run's own channels (the preflight's, the audit's, the
freshness probe's)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from grpc_user.locust.run.state import SuiteRun
from grpc_user.locust.settings.suite import SuiteSettings
from grpc_user.settings import default_target
from grpc_user.target import Target, parse_target


def run_target(environment: Any) -> Target:
    """The target of this run: ``--host``, else GRPC_SERVER_HOST/PORT (raises ValueError if malformed)."""
    return host_target(environment.host)


def host_target(host: str | None) -> Target:
    """The target a host names (a form's, ``--host``); None or '': GRPC_SERVER_HOST/PORT. Raises ValueError if
    malformed."""
    return parse_target(host or default_target())


def target_call(run: SuiteRun, target: Target, timeout: float,
                settings: SuiteSettings | None = None) -> Callable[[str, bytes], bytes]:  # fmt: skip
    """``call(path, payload) -> answer bytes`` over the run's shared channel to ``target``, with a deadline of
    ``timeout`` seconds; ``settings``: the test's (a web UI form's before it starts), else the run's. Raises
    ``grpc.RpcError``, or ``LoopStopped`` when this process can make no call."""
    settings = settings or run.settings
    transport = run.transports.shared(
        target, settings.security, lb_policy=settings.grpc_lb, connections=settings.grpc_connections
    )
    return lambda path, payload: transport.unary(path, payload, timeout)


def peer_call(run: SuiteRun, target: Target, peer: str, timeout: float) -> Callable[[str, bytes], bytes]:
    """``call(path, payload) -> answer bytes`` on a channel to server ``peer`` alone (as grpc names a peer:
    ``ipv4:10.0.0.7:50051``), one of the servers ``target`` reaches, with its TLS name and :authority; raises as
    ``target_call``."""
    transport = run.transports.shared(Target(target.host, target.port, target.tls, peer), run.settings.security)
    return lambda path, payload: transport.unary(path, payload, timeout)
