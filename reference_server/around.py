"""``python -m reference_server.around [server options] -- COMMAND ...``

Starts the reference server on a free loopback port, runs COMMAND with ``LOCUST_HOST`` pointing at
it, stops the server gracefully afterwards and exits with COMMAND's exit code. COMMAND also gets
``REFERENCE_SERVER_PID`` and ``REFERENCE_SERVER_STATS_FILE``, so that ``python -m
reference_server.restart`` (an ``--action``, say) can restart the server on the same port mid-run.

Stopping is COMMAND's to do: SIGTERM (and SIGINT sent to this process alone) is passed on to it,
and this process waits for it to finish, however long its delivery audit and files take. The
server runs in its own session, so a terminal's Ctrl-C reaches Locust (which then stops its users
and audits) but not the server it is auditing.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from reference_server.process import PID_VARIABLE, STATS_FILE_VARIABLE, start_server_process

logger = logging.getLogger("reference_server.around")
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def terminal_delivers_to(process_group: int) -> bool:
    """True when this process runs in the terminal's foreground group: Ctrl-C then reaches COMMAND directly."""
    try:
        return os.tcgetpgrp(sys.stdin.fileno()) == process_group
    except (OSError, ValueError, AttributeError):
        return False


def forward_signals(child: subprocess.Popen) -> None:
    """Pass stop signals on to the child once (a terminal's Ctrl-C already reached it)."""

    def forward(signum: int, _frame: Any) -> None:
        if signum == signal.SIGINT and terminal_delivers_to(os.getpgrp()):
            return
        if child.poll() is None:
            child.send_signal(signum)

    for signum in FORWARDED:
        signal.signal(signum, forward)


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
        exported = {"LOCUST_HOST": host, PID_VARIABLE: str(server.pid), STATS_FILE_VARIABLE: str(server.stats_file)}
        child = subprocess.Popen(command, env={**os.environ, **exported})
        forward_signals(child)
        return child.wait()
    finally:
        stats = server.stop()
        logger.info("reference server stopped: acked %d, stored %d, dropped %d, lost to failed flushes %d, dropped "
                    "from the queue at a stop %d, restarts %d", stats["acked"], stats["stored"], stats["dropped"],
                    stats["flush_failed"], stats["dropped_on_stop"], stats["restarts"])  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
