"""``python -m MODULE ARGS`` for the tests, through a fork server (``tests/forkserver.py``) when there is one.

Run as ``python tests/forked.py MODULE ARGS...`` (``tests/locust_runs.py``'s ``LOCUST`` and ``python_m``): it hands
its argv, directory, environment and standard streams to the server named by ``$FORKSERVER_<MODULE>`` (the top
package, upper-case: ``FORKSERVER_LOCUST``, ``FORKSERVER_REPORTS``) and stands in for the child it forks: the signals
it gets (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2) go to the child, and it exits with the child's code, or
by the child's signal. Killed itself, its server kills the child. It execs ``python -m MODULE ARGS`` itself without a
server, when the server says so, or for ``locust --processes`` started as the leader of its own process group (a
test that signals the group, as a terminal's Ctrl-C does, whose signal must reach the workers the master forks: a
forked master and its workers are outside the trampoline's group). Imports only small standard modules: it costs a
bare interpreter's start.
"""

from __future__ import annotations

import array
import json
import os
import signal
import socket
import sys

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def _exec(module: str, argv: list[str]) -> None:
    os.execv(sys.executable, [sys.executable, "-m", module, *argv])


def main() -> None:
    module, *argv = sys.argv[1:]
    path = os.environ.get(f"FORKSERVER_{module.split('.')[0].upper()}")
    if not path or ("--processes" in argv and os.getpgrp() == os.getpid()):
        _exec(module, argv)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.connect(path)
    except OSError:
        _exec(module, argv)
    child: list[int] = []
    pending: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        if child:
            os.kill(child[0], signum)
        else:
            pending.append(signum)

    for signum in FORWARDED:
        signal.signal(signum, forward)
    request = json.dumps({"module": module, "argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
    server.sendmsg([request], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [0, 1, 2]))])
    answers = server.makefile("rb")
    first = answers.readline().split()
    if first == [b"exec"]:
        _exec(module, argv)
    child.append(int(first[1]))
    for signum in pending:
        os.kill(child[0], signum)
    last = answers.readline().split()
    code = int(last[1]) if last else 1
    if code < 0:
        for signum in FORWARDED:
            signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


if __name__ == "__main__":
    main()
