"""Parse load-test targets: ``host:port``, ``grpc://host:port`` and ``grpcs://host:port``."""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_PORT = 50051
ACCEPTED_FORMS = "host:port, grpc://host:port or grpcs://host:port"
_TARGET = re.compile(r"^(?:(?P<scheme>[a-z]+)://)?(?P<host>\[[0-9a-fA-F:.]+\]|[^\s:/\[\]]+)(?::(?P<port>\d+))?/?$")


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


def parse_target(text: str) -> Target:
    """Parse a target string; raise ValueError naming the value and the accepted forms."""
    match = _TARGET.match(text.strip()) if isinstance(text, str) else None
    if match is None or match["scheme"] not in (None, "grpc", "grpcs"):
        raise ValueError(f"invalid target {text!r}; accepted: {ACCEPTED_FORMS}")
    port = int(match["port"]) if match["port"] else DEFAULT_PORT
    if not 0 < port < 65536:
        raise ValueError(f"invalid port {port} in target {text!r}; accepted: 1-65535")
    return Target(host=match["host"], port=port, tls=match["scheme"] == "grpcs")
