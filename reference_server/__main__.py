"""``python -m reference_server``: run the reference log service until SIGINT or SIGTERM; SIGHUP restarts it on
the same port (a deploy: the stop half follows ``--on-stop``; the store and counters outlive it)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import NoReturn

from reference_server.server import ReferenceServer
from reference_server.settings import ON_STOP, ServerSettings, SettingsError, environment_defaults

HELP = {
    "host": "address to listen on, or unix:PATH for a unix socket",
    "port": "port (0: a free one, see --ready-file)",
    "db": "SQLite file (WAL); in memory when not given",
    "queue_size": "acknowledged logs waiting for storage, at most (LOG_BUFFER_SIZE)",
    "flush_batch": "logs stored per batch (LOG_BATCH_SIZE)",
    "flush_period": "seconds between flushes of a partial batch (LOG_FLUSH_PERIOD)",
    "latency_ms": "fault: milliseconds added to every call",
    "error_rate": "fault: fraction of calls answered UNAVAILABLE",
    "drop_rate": "fault: fraction of acknowledged logs silently discarded at flush",
    "stall_at": "fault: seconds after the first call when the stall begins (with --stall-for)",
    "store_rate": "fault: storage takes at most this many logs per second (0: no limit); the queue stays bounded",
    "stall_for": "fault: every call arriving in the stall waits until it ends, this many seconds after --stall-at",
    "seed": "seed of the fault decisions",
    "max_batch": "largest BatchWriteLog accepted (INVALID_ARGUMENT above)",
    "max_message_bytes": "largest request accepted (RESOURCE_EXHAUSTED above; gRPC's 4 MiB)",
    "max_concurrent_streams": "calls one HTTP/2 connection may have in flight (grpc.max_concurrent_streams, "
    "counted as HTTP/2 counts streams, without grpc's overload protection; 0: no limit); a client queues the rest",
    "tls_cert": "serve TLS with this certificate (PEM)",
    "tls_key": "private key of --tls-cert (PEM)",
    "tls_client_ca": "require client certificates signed by this CA (mutual TLS)",
    "auth_token": "require 'authorization: Bearer <token>' (REFERENCE_AUTH_TOKEN)",
    "stats_file": "write the counters as JSON here after each flush and at shutdown",
    "count_by": "count acknowledged, stored and dropped-at-stop logs per value of this metadata key (stats: "
    "by_metadata), e.g. phase",
    "on_stop": "at a graceful stop (SIGTERM, or a SIGHUP restart): flush stores every queued log; drop-queue stores "
    "the batch being built and drops the rest of the queue, as the real service does",
}


class OneLineParser(argparse.ArgumentParser):
    """Errors are one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> OneLineParser:
    """Options for every ServerSettings field, defaults from the environment."""
    parser = OneLineParser(prog="python -m reference_server", description=__doc__)
    defaults = ServerSettings()
    for field in fields(ServerSettings):
        kind = {"int": int, "float": float, "int | None": int}.get(str(field.type), str)
        flag = "--" + field.name.replace("_", "-")
        choices = ON_STOP if field.name == "on_stop" else None
        parser.add_argument(flag, type=kind, default=getattr(defaults, field.name), help=HELP[field.name],
                            choices=choices)  # fmt: skip
    parser.add_argument("--ready-file", default="", help="write the bound port here once serving")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.set_defaults(**environment_defaults())
    return parser


async def serve(settings: ServerSettings, ready_file: str) -> None:
    """Serve on this loop; SIGINT/SIGTERM stop it gracefully."""
    server = ReferenceServer(settings)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, server.request_stop)
    loop.add_signal_handler(signal.SIGHUP, server.request_restart)
    serving = asyncio.create_task(server.serve())
    while not server.port and not serving.done():
        await asyncio.sleep(0.01)
    if server.port and ready_file:
        Path(ready_file).write_text(str(server.port))
    await serving
    if server.failure is not None:
        raise server.failure


def main(argv: Sequence[str] | None = None) -> int:
    """Parse options, serve until stopped; exit 2 on bad settings."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        values = {field.name: getattr(args, field.name) for field in fields(ServerSettings)}
        settings = ServerSettings(**values)
    except SettingsError as error:
        parser.error(str(error))
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(settings, args.ready_file))
    except SettingsError as error:
        sys.stderr.write(f"{parser.prog}: error: {error}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
