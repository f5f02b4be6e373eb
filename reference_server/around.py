"""``python -m reference_server.around [server options] -- COMMAND ...``

Starts the reference server on a free loopback port, runs COMMAND with ``LOCUST_HOST`` pointing at
it, stops the server gracefully afterwards and exits with COMMAND's exit code. COMMAND also gets
``REFERENCE_SERVER_PID`` and ``REFERENCE_SERVER_STATS_FILE``, so that ``python -m
reference_server.restart`` (an ``--action``, say) can restart the server on the same port mid-run.

Stopping is COMMAND's to do, and COMMAND gets each stop signal exactly once. It runs in a process
group of its own: a signal sent to this process's group (``timeout -s INT``, a CI runner's cancel)
or to this process alone (``kill``, Kubernetes) reaches this process only, which passes it on and
waits for COMMAND to finish, however long its delivery audit and files take. With a terminal, its
foreground is handed to COMMAND's group for the run (and back after), so the terminal's Ctrl-C
reaches COMMAND once, directly. The server runs in its own session: Ctrl-C reaches Locust (which
then stops its users and audits) but not the server it is auditing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

from reference_server.process import PID_VARIABLE, STATS_FILE_VARIABLE, ServerProcess, start_server_process

logger = logging.getLogger("reference_server.around")
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# GNU timeout signals this process, then its whole process group (this process again): copies of one signal
# that arrive this close together are one.
DUPLICATE_WITHIN_SECONDS = 0.5


def foreground_terminal() -> int | None:
    """The terminal on stdin when this process's group is its foreground (its Ctrl-C comes here), else None."""
    try:
        descriptor = sys.stdin.fileno()
        return descriptor if os.tcgetpgrp(descriptor) == os.getpgrp() else None
    except (OSError, ValueError, AttributeError):
        return None


def _set_foreground(terminal: int, process_group: int) -> None:
    """Give the terminal's foreground to ``process_group`` (SIGTTOU ignored: this process may be in the background)."""
    previous = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        with contextlib.suppress(OSError):
            os.tcsetpgrp(terminal, process_group)
    finally:
        signal.signal(signal.SIGTTOU, previous)


@contextlib.contextmanager
def terminal_handed_to(child: subprocess.Popen) -> Iterator[None]:
    """While the child runs, the terminal's Ctrl-C reaches its process group (not this one), and back after."""
    terminal = foreground_terminal()
    if terminal is not None:
        _set_foreground(terminal, child.pid)
    try:
        yield
    finally:
        if terminal is not None:
            _set_foreground(terminal, os.getpgrp())


def forward_signals(children: list[subprocess.Popen], received: list[int]) -> None:
    """Pass each stop signal this process gets on to the child (once started), in its own process group, which got
    none of them; note each in ``received``. Copies of one signal (``DUPLICATE_WITHIN_SECONDS``) go on once."""

    last: dict[int, float] = {}

    def forward(signum: int, _frame: Any) -> None:
        now = time.monotonic()
        if now - last.get(signum, -DUPLICATE_WITHIN_SECONDS) < DUPLICATE_WITHIN_SECONDS:
            return
        last[signum] = now
        received.append(signum)
        for child in children:
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
    children: list[subprocess.Popen] = []
    received: list[int] = []
    forward_signals(children, received)
    try:
        server = start_server_process(*server_args)
    except RuntimeError as error:
        sys.stderr.write(f"reference_server.around: {error}\n")
        return 2
    host = f"grpc://{server.target}"
    logger.info("reference server listening on %s (LOCUST_HOST)", host)
    try:
        if received:  # stopped while the server started: COMMAND never runs
            logger.info("reference_server.around: %s before the command started", signal.Signals(received[0]).name)
            return 128 + received[0]
        exported = {"LOCUST_HOST": host, PID_VARIABLE: str(server.pid), STATS_FILE_VARIABLE: str(server.stats_file)}
        child = subprocess.Popen(command, env={**os.environ, **exported}, process_group=0)
        children.append(child)
        with terminal_handed_to(child):
            return child.wait()
    finally:
        stop_and_report(server)


def stop_and_report(server: ServerProcess) -> None:
    """Stop the server gracefully; one line with its final counters (or why they could not be read)."""
    try:
        stats = server.stop()
    except (OSError, ValueError) as error:  # its stats file gone or cut short: COMMAND's exit code stands
        logger.error("reference server stopped; its counters could not be read: %s", error)
        return
    logger.info("reference server stopped: acked %d, stored %d, dropped %d, lost to failed flushes %d, dropped "
                "from the queue at a stop %d, restarts %d", stats["acked"], stats["stored"], stats["dropped"],
                stats["flush_failed"], stats["dropped_on_stop"], stats["restarts"])  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
