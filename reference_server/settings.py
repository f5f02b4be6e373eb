"""Reference server settings: the real service's knobs (same environment variables) plus faults."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields

# What a graceful stop (SIGTERM, or the stop half of a SIGHUP restart) does with the logs still queued:
# store them all, or store the batch being built and drop the rest, as the real service does.
ON_STOP = ("flush", "drop-queue")


class SettingsError(ValueError):
    """A setting with a value the server does not accept."""


@dataclass(frozen=True)
class ServerSettings:
    """Everything the reference server can be told; defaults are the real service's."""

    host: str = "127.0.0.1"
    port: int = 50051
    db: str = ""
    queue_size: int = 1000
    flush_batch: int = 100
    flush_period: float = 5.0
    latency_ms: float = 0.0
    error_rate: float = 0.0
    drop_rate: float = 0.0
    stall_at: float = 0.0
    stall_for: float = 0.0
    store_rate: float = 0.0
    seed: int | None = None
    max_batch: int = 10000
    max_message_bytes: int = 4 * 1024 * 1024
    max_concurrent_streams: int = 0
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    auth_token: str = ""
    stats_file: str = ""
    on_stop: str = "flush"
    count_by: str = ""

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise SettingsError(
                    f"--{field.name.replace('_', '-')}={value!r} is not valid; accepted: a finite number"
                )
        checks = (
            ("--port", self.port, 0 <= self.port < 65536, "0-65535 (0: a free port)"),
            ("--queue-size", self.queue_size, self.queue_size >= 1, "a whole number >= 1"),
            ("--flush-batch", self.flush_batch, self.flush_batch >= 1, "a whole number >= 1"),
            ("--flush-period", self.flush_period, self.flush_period > 0, "seconds > 0"),
            ("--latency-ms", self.latency_ms, self.latency_ms >= 0, "milliseconds >= 0"),
            ("--error-rate", self.error_rate, 0 <= self.error_rate <= 1, "a fraction from 0 to 1"),
            ("--drop-rate", self.drop_rate, 0 <= self.drop_rate <= 1, "a fraction from 0 to 1"),
            ("--stall-at", self.stall_at, self.stall_at >= 0, "seconds after the first call >= 0"),
            ("--stall-for", self.stall_for, self.stall_for >= 0, "seconds >= 0 (0: no stall)"),
            ("--store-rate", self.store_rate, self.store_rate >= 0, "logs per second >= 0 (0: no limit)"),
            ("--max-batch", self.max_batch, self.max_batch >= 1, "a whole number >= 1"),
            ("--max-message-bytes", self.max_message_bytes, self.max_message_bytes >= 1024, "bytes >= 1024"),
            (
                "--max-concurrent-streams",
                self.max_concurrent_streams,
                self.max_concurrent_streams >= 0,
                "a whole number >= 0 (0: gRPC's default, no limit)",
            ),
        )
        for option, value, valid, accepted in checks:
            if not valid:
                raise SettingsError(f"{option}={value!r} is not valid; accepted: {accepted}")
        if self.on_stop not in ON_STOP:
            raise SettingsError(f"--on-stop={self.on_stop!r} is not valid; accepted: {' or '.join(ON_STOP)}")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise SettingsError("--tls-cert and --tls-key go together")
        if self.tls_client_ca and not self.tls_cert:
            raise SettingsError("--tls-client-ca needs --tls-cert and --tls-key")
        for option, path in (("--tls-cert", self.tls_cert), ("--tls-key", self.tls_key),
                             ("--tls-client-ca", self.tls_client_ca)):  # fmt: skip
            if path and not os.path.isfile(path):
                raise SettingsError(f"{option}={path!r} is not a readable file; accepted: a PEM file")


# The real service's environment variables, and this server's own for the rest.
ENVIRONMENT = {
    "queue_size": "LOG_BUFFER_SIZE",
    "flush_batch": "LOG_BATCH_SIZE",
    "flush_period": "LOG_FLUSH_PERIOD",
    "auth_token": "REFERENCE_AUTH_TOKEN",
}


def environment_defaults() -> dict[str, object]:
    """Settings given by environment variables, converted to their field types."""
    types = {field.name: field.type for field in fields(ServerSettings)}
    values: dict[str, object] = {}
    for name, variable in ENVIRONMENT.items():
        raw = os.environ.get(variable)
        if raw in (None, ""):
            continue
        kind = {"int": int, "float": float}.get(str(types[name]), str)
        try:
            values[name] = kind(raw)
        except ValueError:
            raise SettingsError(f"{variable}={raw!r} is not valid; accepted: a {kind.__name__}") from None
    return values
