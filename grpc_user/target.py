"""Parse load-test targets: ``host:port``, ``grpc://host:port`` and ``grpcs://host:port``."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

DEFAULT_PORT = 50051
ACCEPTED_FORMS = "host:port, grpc://host:port or grpcs://host:port"
ACCEPTED_HOSTS = "an IP address ([::1] for IPv6) or a DNS name of ASCII letters, digits, '-', '_' and '.'"
_TARGET = re.compile(r"^(?:(?P<scheme>[a-z]+)://)?(?P<host>\[[^\]]*\]|[^\s:/\[\]]+)(?::(?P<port>\d+))?/?$")
_AUTHORITY = re.compile(r"^(?P<host>\[[^\]]*\]|[^:\[\]]+)(?::(?P<port>\d{1,5}))?$")
_DNS_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")


@dataclass(frozen=True)
class Target:
    """Where the log service listens, and whether to speak TLS to it."""

    host: str
    port: int
    tls: bool = False

    @property
    def address(self) -> str:
        """The ``host:port`` form grpc channels take."""
        return f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"{'grpcs' if self.tls else 'grpc'}://{self.address}"


def valid_host(host: str) -> bool:
    """An IPv4 address, a bracketed IPv6 address or a DNS name, as gRPC's resolvers take them."""
    if host.startswith("[") and host.endswith("]"):
        try:
            return ipaddress.ip_address(host[1:-1]).version == 6
        except ValueError:
            return False
    name = host[:-1] if host.endswith(".") else host
    return 0 < len(name) <= 253 and all(_DNS_LABEL.match(label) for label in name.split("."))


def valid_authority(text: str) -> bool:
    """``host`` or ``host:port`` as ``--grpc-authority`` (the HTTP/2 :authority and the TLS name) takes it."""
    match = _AUTHORITY.match(text)
    return bool(match) and valid_host(match["host"]) and (not match["port"] or 0 < int(match["port"]) < 65536)


def parse_target(text: str) -> Target:
    """Parse a target string; raise ValueError naming the value and the accepted forms (the port is required:
    gRPC's own default would be 443, the log service's 50051)."""
    match = _TARGET.match(text.strip()) if isinstance(text, str) else None
    if match is None or match["scheme"] not in (None, "grpc", "grpcs"):
        raise ValueError(f"invalid target {text!r}; accepted: {ACCEPTED_FORMS}")
    if not valid_host(match["host"]):
        raise ValueError(f"invalid host {match['host']!r} in target {text!r}; accepted: {ACCEPTED_HOSTS}")
    if not match["port"]:
        raise ValueError(f"no port in target {text!r}; accepted: {ACCEPTED_FORMS} (the log service listens on "
                         f"{DEFAULT_PORT})")
    port = int(match["port"])
    if not 0 < port < 65536:
        raise ValueError(f"invalid port {port} in target {text!r}; accepted: 1-65535")
    return Target(host=match["host"], port=port, tls=match["scheme"] == "grpcs")
