"""Channel construction shared by the sync, asyncio and Locust clients: options, TLS, mutual TLS, load balancing."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import grpc.aio

from grpc_user.security import Security
from grpc_user.target import Target

# Batches of big entries exceed gRPC's 4 MiB default: the server, not the client, enforces its limit.
# Reconnect within a second of a restarted server, not after gRPC's default backoff of up to 2 minutes:
# a load test measures recovery, it must not cause a slow one. The backoff between attempts is capped
# at 1 s, but not the attempts themselves: gRPC core also reads grpc.min_reconnect_backoff_ms as the
# shortest time a connection attempt may take (20 s by default), so it is left alone, and a TLS
# handshake to a distant or busy server may take seconds.
CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    # No channelz trace events: the suite reads channelz for calls per server, and traces would triple each read.
    ("grpc.max_channel_trace_event_memory_per_node", 0),
)


# grpc's load-balancing policies a channel may be given (its default is pick_first).
LB_POLICIES = ("pick_first", "round_robin")
# Channels with the same target and options share their connections (grpc's global subchannel pool); a channel
# with its own pool opens connections of its own.
OWN_CONNECTIONS: tuple[str, int] = ("grpc.use_local_subchannel_pool", 1)


def service_config(lb_policy: str) -> str:
    """grpc's service config (JSON) choosing a load-balancing policy of ``LB_POLICIES``; ValueError otherwise."""
    if lb_policy not in LB_POLICIES:
        raise ValueError(f"load-balancing policy {lb_policy!r}; accepted: {', '.join(LB_POLICIES)}")
    return json.dumps({"loadBalancingConfig": [{lb_policy: {}}]})


def channel_options(
    security: Security, target: Target | None = None, *, lb_policy: str = "", own_connections: bool = False
) -> list[tuple[str, object]]:
    """Options of every channel: the TLS name / :authority override when one is given (for ``ipv4:``/``ipv6:``
    lists, the first address, which grpc would not check a certificate against), the load-balancing policy when
    one is given, and with ``own_connections`` a subchannel pool of the channel's own."""
    options: list[tuple[str, object]] = list(CHANNEL_OPTIONS)
    if security.authority:
        authority = security.authority
        options += [("grpc.ssl_target_name_override", authority), ("grpc.default_authority", authority)]
    elif target is not None and target.uri.startswith(("ipv4:", "ipv6:")):
        # grpc's own :authority for an address list is the whole list, which no certificate names.
        options.append(("grpc.default_authority", f"{target.host}:{target.port}"))
        if target.tls:
            options.append(("grpc.ssl_target_name_override", target.tls_name))
    if lb_policy:
        options.append(("grpc.service_config", service_config(lb_policy)))
    if own_connections:
        options.append(OWN_CONNECTIONS)
    return options


def channel_credentials(target: Target, security: Security) -> grpc.ChannelCredentials | None:
    """TLS credentials for ``grpcs://`` targets (CA, and client certificate for mutual TLS); None for plaintext."""
    if not target.tls:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=_read(security.ca), private_key=_read(security.key), certificate_chain=_read(security.cert)
    )


def _read(path: str) -> bytes | None:
    return Path(path).read_bytes() if path else None


def sync_channel(target: Target, security: Security | None = None, *, lb_policy: str = "") -> grpc.Channel:
    """A blocking channel to the target (``lb_policy``: one of ``LB_POLICIES``, '' for grpc's default)."""
    security = security or Security()
    credentials, options = channel_credentials(target, security), channel_options(security, target, lb_policy=lb_policy)
    if credentials is not None:
        return grpc.secure_channel(target.address, credentials, options=options)
    return grpc.insecure_channel(target.address, options=options)


def aio_channel(
    target: Target, security: Security | None = None, *, lb_policy: str = "", own_connections: bool = False
) -> grpc.aio.Channel:
    """An asyncio channel to the target (``lb_policy`` as for ``sync_channel``; ``own_connections``: connections
    of its own, not shared with other channels of the process to the same target)."""
    security = security or Security()
    options = channel_options(security, target, lb_policy=lb_policy, own_connections=own_connections)
    credentials = channel_credentials(target, security)
    if credentials is not None:
        return grpc.aio.secure_channel(target.address, credentials, options=options)
    return grpc.aio.insecure_channel(target.address, options=options)
