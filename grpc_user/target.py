"""Parse load-test targets: ``host:port``, ``grpc://host:port``, ``grpcs://host:port``, and grpc's own forms.

grpc's own target forms (``dns:///host:port``, ``dns://dns-server:port/host:port``, ``ipv4:a:p,b:p``,
``ipv6:[a]:p,[b]:p``, ``unix:path``) are handed to grpc as they are, so its resolvers and load-balancing
policies do the work; ``grpcs+`` before one of them speaks TLS to it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

DEFAULT_PORT = 50051
GRPC_FORMS = "dns:///host:port, dns://dns-server:port/host:port, ipv4:a:port,b:port, ipv6:[a]:port,[b]:port, unix:path"
ACCEPTED_FORMS = f"host:port, grpc://host:port or grpcs://host:port, or grpc's {GRPC_FORMS} (grpcs+ before one: TLS)"
ACCEPTED_HOSTS = "an IP address ([::1] for IPv6) or a DNS name of ASCII letters, digits, '-', '_' and '.'"
TLS_PREFIX = "grpcs+"
# The name TLS checks, and the :authority, of a unix socket: grpc's own default for ``unix:``.
UNIX_AUTHORITY = "localhost"
_TARGET = re.compile(r"^(?:(?P<scheme>[a-z]+)://)?(?P<host>\[[^\]]*\]|[^\s:/\[\]]+)(?::(?P<port>\d+))?/?$")
_AUTHORITY = re.compile(r"^(?P<host>\[[^\]]*\]|[^:\[\]]+)(?::(?P<port>\d{1,5}))?$")
_DNS_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")
_DNS = re.compile(
    r"^dns:(?://(?P<server>(?:[A-Za-z0-9.\-_]+|\[[0-9a-fA-F:.]+\]):\d+)?/)?(?P<host>[A-Za-z0-9.\-_]+|\[[0-9a-fA-F:.]+\]):(?P<port>\d+)$"
)
_IPV4 = re.compile(r"^(?P<host>[0-9.]+):(?P<port>\d+)$")
_IPV6 = re.compile(r"^\[(?P<host>[0-9a-fA-F:.]+)\]:(?P<port>\d+)$")


@dataclass(frozen=True)
class Target:
    """Where the log service listens, and whether to speak TLS to it.

    ``host`` and ``port`` name one server (for grpc's forms: the first address, or ``localhost`` and 0 for a unix
    socket); ``uri`` is grpc's own target form when one was given, which may name several servers.
    """

    host: str
    port: int
    tls: bool = False
    uri: str = ""

    @property
    def address(self) -> str:
        """What grpc channels take: grpc's form when one was given, else ``host:port``."""
        return self.uri or f"{self.host}:{self.port}"

    @property
    def tls_name(self) -> str:
        """The host name TLS checks the server certificate against (``host`` without IPv6 brackets)."""
        return self.host.strip("[]")

    @property
    def listed_peers(self) -> tuple[str, ...]:
        """The servers an ``ipv4:``/``ipv6:`` list names, as grpc names a call's peer (``ipv4:10.0.0.7:50051``);
        () for the other forms, whose servers only the resolver knows."""
        scheme, _, body = self.uri.partition(":")
        if scheme not in ("ipv4", "ipv6"):
            return ()
        return tuple(f"{scheme}:{address}" for address in body.split(","))

    def __str__(self) -> str:
        if self.uri:
            return f"{TLS_PREFIX if self.tls else ''}{self.uri}"
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
    return match is not None and valid_host(match["host"]) and (not match["port"] or 0 < int(match["port"]) < 65536)


def _port(text: str, target: str) -> int:
    port = int(text)
    if not 0 < port < 65536:
        raise ValueError(f"invalid port {port} in target {target!r}; accepted: 1-65535")
    return port


def _is_ip_version(host: str, version: int) -> bool:
    try:
        return ipaddress.ip_address(host).version == version
    except ValueError:
        return False


def _addresses(text: str, target: str, pattern: re.Pattern[str], version: int) -> list[tuple[str, int]]:
    addresses = []
    for part in text.split(","):
        match = pattern.match(part)
        if match is None or not _is_ip_version(match["host"], version):
            raise ValueError(f"invalid address {part!r} in target {target!r}; accepted: {GRPC_FORMS}")
        addresses.append((match["host"], _port(match["port"], target)))
    return addresses


def _grpc_form(uri: str, text: str, tls: bool) -> Target:
    """One of grpc's own target forms, checked; ValueError naming the value and the accepted forms."""
    scheme = uri.partition(":")[0]
    if scheme == "dns":
        match = _DNS.match(uri)
        if match is None:
            raise ValueError(
                f"invalid target {text!r}; accepted: {ACCEPTED_FORMS} (a port is required, and on a DNS server too)"
            )
        return Target(match["host"], _port(match["port"], text), tls, uri)
    if scheme in ("ipv4", "ipv6"):
        body = uri[len(scheme) + 1 :]
        addresses = _addresses(body, text, _IPV4 if scheme == "ipv4" else _IPV6, int(scheme[-1]))
        host, port = addresses[0]
        return Target(f"[{host}]" if scheme == "ipv6" else host, port, tls, uri)
    path = uri[len("unix:") :]
    if not path.strip("/") or path.strip() != path or (path.startswith("//") and not path.startswith("///")):
        raise ValueError(f"invalid target {text!r}; accepted: unix:relative/path, unix:/absolute/path "
                         "or unix:///absolute/path")  # fmt: skip
    return Target(UNIX_AUTHORITY, 0, tls, uri)


def parse_target(text: str) -> Target:
    """Parse a target string; raise ValueError naming the value and the accepted forms (the port is required:
    gRPC's own default would be 443, the log service's 50051)."""
    if isinstance(text, str):
        stripped = text.strip()
        tls = stripped.startswith(TLS_PREFIX)
        uri = stripped[len(TLS_PREFIX) :] if tls else stripped
        if uri.partition(":")[0] in ("dns", "ipv4", "ipv6", "unix"):
            return _grpc_form(uri, text, tls)
        if tls:
            raise ValueError(f"invalid target {text!r}; accepted: {TLS_PREFIX} before one of grpc's {GRPC_FORMS}")
    match = _TARGET.match(text.strip()) if isinstance(text, str) else None
    if match is None or match["scheme"] not in (None, "grpc", "grpcs"):
        raise ValueError(f"invalid target {text!r}; accepted: {ACCEPTED_FORMS}")
    if not valid_host(match["host"]):
        raise ValueError(f"invalid host {match['host']!r} in target {text!r}; accepted: {ACCEPTED_HOSTS}")
    if not match["port"]:
        raise ValueError(
            f"no port in target {text!r}; accepted: {ACCEPTED_FORMS} (the log service listens on {DEFAULT_PORT})"
        )
    port = int(match["port"])
    if not 0 < port < 65536:
        raise ValueError(f"invalid port {port} in target {text!r}; accepted: 1-65535")
    return Target(host=match["host"], port=port, tls=match["scheme"] == "grpcs")
