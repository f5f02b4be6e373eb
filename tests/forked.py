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

import _signal
import _socket
import array
import marshal
import os
import sys

# The C modules under ``signal`` and ``socket``, and marshal rather than json: their Python layers import enum and re,
# 0.03 of the 0.045 CPU-s a trampoline took, paid by each of the suite's hundreds of forked processes.
FORWARDED = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT, _signal.SIGUSR1, _signal.SIGUSR2)


def _exec(module: str, argv: list[str]) -> None:
    os.execv(sys.executable, [sys.executable, "-m", module, *argv])


def _lines(server: _socket.socket):
    """The server's answers, one line at a time, split in words."""
    buffered = b""
    while True:
        while b"\n" not in buffered:
            chunk = server.recv(4096)
            if not chunk:
                yield buffered.split()
                return
            buffered += chunk
        line, buffered = buffered.split(b"\n", 1)
        yield line.split()


def main() -> None:
    module, *argv = sys.argv[1:]
    path = os.environ.get(f"FORKSERVER_{module.split('.')[0].upper()}")
    if not path or ("--processes" in argv and os.getpgrp() == os.getpid()):
        _exec(module, argv)
    server = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
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
        _signal.signal(signum, forward)
    request = marshal.dumps({"module": module, "argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)})
    server.sendmsg([request], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, array.array("i", [0, 1, 2]))])
    answers = _lines(server)
    first = next(answers)
    if first == [b"exec"]:
        _exec(module, argv)
    child.append(int(first[1]))
    for signum in pending:
        os.kill(child[0], signum)
    last = next(answers)
    code = int(last[1]) if last else 1
    if code < 0:
        for signum in FORWARDED:
            _signal.signal(signum, _signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


if __name__ == "__main__":
    main()
