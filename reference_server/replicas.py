"""``python -m reference_server.replicas N [--port P] [--db FILE] [server options]``: N replicas over one store.

Starts N reference servers on consecutive loopback ports from P (default 50051), all writing one
SQLite file, as the real service's replicas share MongoDB: every replica's QueryLog sees every
replica's logs, so the delivery audit is exact whichever replica answers it. Prints the
``ipv4:`` target that lists them and runs until SIGINT or SIGTERM, then stops each gracefully.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from reference_server.process import ServerProcess, start_server_process

logger = logging.getLogger("reference_server.replicas")
DEFAULT_PORT = 50051


def parse(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """The replica count, first port and store; every other option goes to each server."""
    parser = argparse.ArgumentParser(prog="python -m reference_server.replicas", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("replicas", type=int, help="how many servers, 1..64")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port of the first; the others follow it")
    parser.add_argument("--db", default="", help="the SQLite file they share (default: a new temporary one)")
    args, server_args = parser.parse_known_args(argv)
    if not 1 <= args.replicas <= 64:
        parser.error(f"replicas={args.replicas!r} is not valid; accepted: a whole number from 1 to 64")
    if not 1 <= args.port <= 65536 - args.replicas:
        parser.error(f"--port={args.port!r} is not valid; accepted: 1..{65536 - args.replicas} "
                     f"(then {args.replicas} consecutive ports)")  # fmt: skip
    return args, server_args


def start_replicas(count: int, first_port: int, db: str, server_args: Sequence[str]) -> list[ServerProcess]:
    """Start ``count`` servers on 127.0.0.1 from ``first_port`` over the SQLite file ``db``; stop them all and
    raise RuntimeError naming the cause if one cannot start."""
    started: list[ServerProcess] = []
    try:
        for index in range(count):
            started.append(start_server_process(*server_args, "--port", str(first_port + index), "--db", db))
    except RuntimeError:
        for server in started:
            server.kill()
        raise
    return started


def main(argv: Sequence[str] | None = None) -> int:
    """Run the replicas until stopped."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args, server_args = parse(sys.argv[1:] if argv is None else argv)
    folder = tempfile.TemporaryDirectory(prefix="reference-replicas-")
    db = args.db or str(Path(folder.name) / "logs.db")
    try:
        replicas = start_replicas(args.replicas, args.port, db, server_args)
    except RuntimeError as error:
        sys.stderr.write(f"reference_server.replicas: {error}\n")
        return 2
    scheme = "ipv6:" if replicas[0].target.startswith("[") else "ipv4:"
    target = scheme + ",".join(server.target for server in replicas)
    logger.info("%d reference servers over one store (%s):\n  --host %s --grpc-lb round_robin", len(replicas), db,
                target)  # fmt: skip
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
    for server in replicas:
        stats = server.stop()
        logger.info("%s stopped: acked %d, stored %d", server.target, stats["acked"], stats["stored"])
    folder.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
