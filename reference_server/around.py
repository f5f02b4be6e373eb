"""``python -m reference_server.around [server options] -- COMMAND ...``

Starts the reference server on a free loopback port, runs COMMAND with ``LOCUST_HOST`` pointing at
it, stops the server gracefully afterwards and exits with COMMAND's exit code.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Sequence

from reference_server.process import start_server_process

logger = logging.getLogger("reference_server.around")


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command around a fresh reference server."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = list(sys.argv[1:] if argv is None else argv)
    if "--" not in args or args.index("--") == len(args) - 1:
        sys.stderr.write("usage: python -m reference_server.around [server options] -- COMMAND ...\n")
        return 2
    split = args.index("--")
    server_args, command = args[:split], args[split + 1 :]
    try:
        server = start_server_process(*server_args)
    except RuntimeError as error:
        sys.stderr.write(f"reference_server.around: {error}\n")
        return 2
    host = f"grpc://{server.target}"
    logger.info("reference server listening on %s (LOCUST_HOST)", host)
    try:
        return subprocess.call(command, env={**os.environ, "LOCUST_HOST": host})
    except KeyboardInterrupt:
        return 130
    finally:
        stats = server.stop()
        logger.info("reference server stopped: acked %d, stored %d, dropped %d",
                    stats["acked"], stats["stored"], stats["dropped"])  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
