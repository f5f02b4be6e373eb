"""Where the reference server listens: ``--host`` and ``--port`` as grpc's server takes them, checked first.

grpc reads ``::1:50051`` as the IPv4-mapped ``[::0.1.0.0]:443`` and reports a failed bind in a raw C-core
line; an IPv6 address is bracketed here, and an address this machine cannot listen on is named in one line.
"""

from __future__ import annotations

import ipaddress
import socket

from reference_server.settings import SettingsError

ACCEPTED = "an address of this machine (127.0.0.1, ::1, 0.0.0.0, ::) or a name that resolves to one"


def _bare(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def listen_address(host: str, port: int) -> str:
    """``host:port`` for grpc, an IPv6 address in brackets (``[::1]:50051``)."""
    bare = _bare(host)
    try:
        ipv6 = ipaddress.ip_address(bare).version == 6
    except ValueError:
        ipv6 = False
    return f"[{bare}]:{port}" if ipv6 else f"{bare}:{port}"


def check_listenable(host: str, port: int) -> None:
    """Raise SettingsError, one line, when ``host`` does not resolve or ``host:port`` cannot be bound here (not an
    address of this machine, or the port in use)."""
    try:
        found = socket.getaddrinfo(_bare(host), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as error:
        why = getattr(error, "strerror", None) or error
        raise SettingsError(f"--host={host!r} is not valid ({why}); accepted: {ACCEPTED}") from None
    for family, kind, protocol, _, address in found:
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as error:
                raise SettingsError(
                    f"cannot listen on {listen_address(host, port)}: {error.strerror or error}; "
                    f"accepted: {ACCEPTED}, and a port no other process listens on"
                ) from None
