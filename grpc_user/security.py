"""Transport security of a channel: TLS files, the authority, call metadata and a bearer token.

The client's channels and the Locust plugin's settings both use it; it imports neither.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Security:
    """Transport security and call metadata; the token is never written anywhere."""

    ca: str = ""
    cert: str = ""
    key: str = ""
    authority: str = ""
    metadata: tuple[tuple[str, str], ...] = ()
    token: str = field(default="", repr=False)

    def call_metadata(self) -> tuple[tuple[str, str], ...]:
        """Metadata sent with every call: the ``--grpc-metadata`` pairs and the bearer token."""
        return self.metadata + ((("authorization", f"Bearer {self.token}"),) if self.token else ())
