"""Channel construction shared by the sync, asyncio and Locust clients: options, TLS, mutual TLS."""

from __future__ import annotations

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
)


def channel_options(security: Security) -> list[tuple[str, object]]:
    """Options of every channel, with the TLS name / :authority override when one is given."""
    options: list[tuple[str, object]] = list(CHANNEL_OPTIONS)
    if security.authority:
        authority = security.authority
        options += [("grpc.ssl_target_name_override", authority), ("grpc.default_authority", authority)]
    return options


def channel_credentials(target: Target, security: Security) -> grpc.ChannelCredentials | None:
    """TLS credentials for ``grpcs://`` targets (CA, and client certificate for mutual TLS); None for plaintext."""
    if not target.tls:
        return None
    read = lambda path: Path(path).read_bytes() if path else None  # noqa: E731
    return grpc.ssl_channel_credentials(
        root_certificates=read(security.ca), private_key=read(security.key), certificate_chain=read(security.cert)
    )


def sync_channel(target: Target, security: Security | None = None) -> grpc.Channel:
    """A blocking channel to the target."""
    security = security or Security()
    credentials, options = channel_credentials(target, security), channel_options(security)
    if credentials is not None:
        return grpc.secure_channel(target.address, credentials, options=options)
    return grpc.insecure_channel(target.address, options=options)


def aio_channel(target: Target, security: Security | None = None) -> grpc.aio.Channel:
    """An asyncio channel to the target."""
    security = security or Security()
    credentials, options = channel_credentials(target, security), channel_options(security)
    if credentials is not None:
        return grpc.aio.secure_channel(target.address, credentials, options=options)
    return grpc.aio.insecure_channel(target.address, options=options)
