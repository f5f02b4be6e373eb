"""The security options (TLS files, authority, metadata, the bearer token's variable), checked against what gRPC
accepts and turned into the client's ``Security``. Fixed when Locust starts: the web UI shows option values and
could send a secret to any host, so it never sets them. The token is never shown, not even in an error."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from typing import Any

from grpc_user.locust.settings.table import option
from grpc_user.locust.settings.values import (
    PRINTABLE_ASCII,
    OptionError,
    Refused,
    first_unprintable,
    metadata_pairs,
    text,
)
from grpc_user.security import Security
from grpc_user.target import ACCEPTED_HOSTS, valid_authority

SECURITY = "Security (command line or environment only)"
DEFAULT_TOKEN_ENV = "GRPC_AUTH_TOKEN"
# gRPC servers refuse calls whose metadata passes 8 KiB (grpc.max_metadata_size; each entry counts 32 bytes
# beyond its key and value), and some of those between 8 and 16 KiB at random.
MAX_METADATA_BYTES = 8192
METADATA_ENTRY_OVERHEAD = 32


def readable_file(raw: Any) -> str:
    """A path to an existing file, or '' (none)."""
    path = str(raw or "")
    if path and not os.path.isfile(path):
        raise Refused("the path of a readable PEM file")
    return path


def authority(raw: Any) -> str:
    """``host`` or ``host:port`` for the HTTP/2 :authority and the TLS name, or '' (the target's host)."""
    value = str(raw or "")
    if value and not valid_authority(value):
        raise Refused(f"host or host:port, the host being {ACCEPTED_HOSTS}")
    return value


@dataclass(frozen=True)
class SecurityOptions:
    """The security options as typed, each checked on its own; ``security()`` checks them together."""

    grpc_ca: str = option(
        "--grpc-ca",
        parse=readable_file,
        default="",
        help="PEM file of the CA that signed the server certificate (grpcs://)",
        group=SECURITY,
        web_ui=False,
        shown_default="none",
        metavar="FILE",
    )
    grpc_cert: str = option(
        "--grpc-cert",
        parse=readable_file,
        default="",
        help="client certificate PEM for mutual TLS",
        group=SECURITY,
        web_ui=False,
        shown_default="none",
        metavar="FILE",
    )
    grpc_key: str = option(
        "--grpc-key",
        parse=readable_file,
        default="",
        help="client private key PEM for mutual TLS",
        group=SECURITY,
        web_ui=False,
        shown_default="none",
        metavar="FILE",
    )
    grpc_authority: str = option(
        "--grpc-authority",
        parse=authority,
        default="",
        help="TLS server name / :authority to use instead of the host",
        group=SECURITY,
        web_ui=False,
        shown_default="the host",
        metavar="HOST",
    )
    grpc_metadata: tuple[tuple[str, str], ...] = option(
        "--grpc-metadata",
        parse=metadata_pairs,
        default=(),
        help="key=value sent with every call (repeatable)",
        group=SECURITY,
        kind="repeat",
        web_ui=False,
        shown_default="none",
        metavar="KEY=VALUE",
    )
    grpc_token_env: str = option(
        "--grpc-token-env",
        parse=text(DEFAULT_TOKEN_ENV),
        default=DEFAULT_TOKEN_ENV,
        help="environment variable holding a bearer token for authorization",
        group=SECURITY,
        web_ui=False,
        metavar="VAR",
    )

    def security(self) -> Security:
        """The client's Security: the certificate with its key, the TLS files loaded as gRPC loads them, the token
        read from ``grpc_token_env`` in printable ASCII, the metadata within what servers accept. OptionError."""
        if bool(self.grpc_cert) != bool(self.grpc_key):
            raise OptionError(
                "--grpc-cert" if self.grpc_cert else "--grpc-key",
                self.grpc_cert or self.grpc_key,
                "--grpc-cert and --grpc-key together",
            )
        _load_pem(self.grpc_ca, self.grpc_cert, self.grpc_key)
        token = os.environ.get(self.grpc_token_env, "")
        if bad := first_unprintable(token):
            raise OptionError(
                "--grpc-token-env",
                self.grpc_token_env,
                f"a variable holding a token of {PRINTABLE_ASCII}, the "
                f"only characters gRPC sends in the authorization header (its token holds {bad!r})",
            )
        security = Security(
            ca=self.grpc_ca,
            cert=self.grpc_cert,
            key=self.grpc_key,
            authority=self.grpc_authority,
            metadata=self.grpc_metadata,
            token=token,
        )
        size = sum(len(key) + len(value) + METADATA_ENTRY_OVERHEAD for key, value in security.call_metadata())
        if size > MAX_METADATA_BYTES:
            raise OptionError(
                "--grpc-metadata",
                f"{len(security.metadata)} pairs, {size} bytes in all",
                f"at most {MAX_METADATA_BYTES} bytes of metadata in all, the bearer token's included "
                f"({METADATA_ENTRY_OVERHEAD} per pair beyond its key and value): gRPC servers refuse "
                "calls carrying more",
            )
        return security


def _load_pem(ca: str, cert: str, key: str) -> None:
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
            raise OptionError(
                "--grpc-cert",
                cert,
                f"a PEM certificate whose private key is the unencrypted PEM --grpc-key ({error.args[-1]})",
            ) from None
