"""A fork server for the tests' ``python -m MODULE`` processes: the heavy imports once, a fork per command.

Every Locust process of the test suite paid about 0.9 CPU-s to import Locust (Flask, requests, gevent's patching),
grpc and the client before it parsed an option, and every ``python -m reports`` 2 CPU-s for pandas and matplotlib:
the floor of most tests. A server per module, started once per pytest session (``tests/forkserver_pool.py``),
imports them once; each ``tests/forked.py MODULE ARGS`` (what the tests run in place of ``python -m MODULE ARGS``)
hands it its argv, working directory, environment and standard streams, and the server forks a child that runs the
module's ``__main__`` in them, as Locust's own ``--processes`` forks workers from an imported master. The child is a
real process with the module's exit code and signal handling; what it does not share with an exec'd one:

- the preloaded modules were imported before its environment was set: a request whose environment differs from the
  server's in a variable those imports read (``GRPC_*``, ``GEVENT*``, ``PYTHON*``, ``LD_*``, ``MPL*``,
  ``PROMETHEUS_*``, ``TQDM_*``) is refused, and the trampoline execs ``python -m MODULE`` itself;
- only libraries and modules without import-time effects are preloaded: the suite's plugin (``grpc_user.locust``,
  which registers on Locust's events) is imported by the child's locustfile, as in an exec'd Locust;
- its parent is a monitor process, not the test: a test that looks at the process by its pid (its children, its
  sockets) runs the real command (``tests/locust_runs.py``'s ``REAL_LOCUST``).

Protocol, over a Unix socket: the trampoline sends one marshalled dict ``{"module", "argv", "cwd", "env"}`` with its fds
0, 1, 2 (SCM_RIGHTS); a monitor forked for it answers ``exec`` (run it yourself) or ``pid N``, then ``exit N`` (a
negative N: killed by signal -N) when the child ends. The monitor kills the child when the trampoline's socket
closes (the test killed it), so no child outlives its test.

Usage: ``python tests/forkserver.py SOCKET_PATH MODULE [PRELOAD...]``: serves ``python -m MODULE`` (and its
submodules) with PRELOAD imported; it exits when its parent does.
"""

from __future__ import annotations

import array
import gc
import importlib
import marshal
import os
import runpy
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

IMPORT_TIME_PREFIXES = ("GRPC_", "GEVENT", "PYTHON", "LD_", "MPL", "PROMETHEUS_", "TQDM_")
MAX_REQUEST_BYTES = 4 * 1024 * 1024
REAP_SECONDS = 0.25


def _original(module: str, name: str) -> Callable[..., Any]:
    """``module.name`` as the standard library has it, not gevent's patch of it (Locust's import patches them): the
    server and its monitors never start gevent's hub, so a child starts as clean as an exec'd process."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey.get_original(module, name) if monkey else getattr(importlib.import_module(module), name)


def _import_time_environment(env: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in env.items() if key.startswith(IMPORT_TIME_PREFIXES)}


def _receive(connection: socket.socket) -> tuple[dict, list[int]]:
    fds = array.array("i")
    data, ancillary, _, _ = connection.recvmsg(MAX_REQUEST_BYTES, socket.CMSG_LEN(3 * fds.itemsize))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    return marshal.loads(data), list(fds)


def _run_module(request: dict, fds: list[int]) -> None:
    """In the child: become ``python -m MODULE ARGV`` in the trampoline's directory, environment and streams. The
    module's ``sys.exit`` (or an uncaught exception) unwinds to the top of this script, and the interpreter exits as
    an exec'd one would: threads joined, atexit run, files flushed, the exit code or the signal."""
    signal_ = _original("signal", "signal")
    for signum in (signal.SIGTERM, signal.SIGCHLD):
        signal_(signum, signal.SIG_DFL)
    signal_(signal.SIGINT, signal.default_int_handler)
    signal.set_wakeup_fd(-1)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    # The interpreter's own streams, as it makes them at start-up for these fds.
    sys.stdin = sys.__stdin__ = open(0, closefd=False)  # noqa: SIM115
    sys.stdout = sys.__stdout__ = open(1, "w", buffering=1 if os.isatty(1) else -1, closefd=False)  # noqa: SIM115
    sys.stderr = sys.__stderr__ = open(2, "w", buffering=1, errors="backslashreplace", closefd=False)  # noqa: SIM115
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.path[0] = request["cwd"]  # python -m's first path entry
    sys.argv = ["-m", *request["argv"]]
    runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    sys.exit(0)


def _monitor(connection: socket.socket, listener: socket.socket, served: str) -> None:
    """In a monitor (forked per request): fork the child, report its pid and its end, kill it if the trampoline goes."""
    listener.close()
    request, fds = _receive(connection)
    module = request["module"]
    if module.split(".")[0] != served or _import_time_environment(request["env"]) != _import_time_environment(
        dict(os.environ)
    ):
        connection.sendall(b"exec\n")
        os._exit(0)
    fork, waitpid, select = _original("os", "fork"), _original("os", "waitpid"), _original("select", "select")
    wakeup_read, wakeup_write = os.pipe()
    os.set_blocking(wakeup_write, False)
    _original("signal", "signal")(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wakeup_write)
    child = fork()
    if child == 0:
        connection.close()
        os.close(wakeup_read)
        os.close(wakeup_write)
        _run_module(request, fds)
    for fd in fds:
        os.close(fd)
    connection.sendall(b"pid %d\n" % child)
    while True:
        readable, _, _ = select([connection, wakeup_read], [], [])
        if wakeup_read in readable:
            os.read(wakeup_read, 512)
        pid, status = waitpid(child, os.WNOHANG)
        if pid:
            code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            connection.sendall(b"exit %d\n" % code)
            os._exit(0)
        if connection in readable and not connection.recv(64):
            os.kill(child, signal.SIGKILL)  # the trampoline is gone: its test killed it
            waitpid(child, 0)
            os._exit(0)


def serve(path: str, served: str) -> None:
    """Accept requests on ``path`` until the parent (the session's first pytest process) is gone; a monitor per
    request."""
    parent = os.getppid()
    fork, waitpid, select = _original("os", "fork"), _original("os", "waitpid"), _original("select", "select")
    _original("signal", "signal")(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C of the test run is the tests' to handle
    with _original("socket", "socket")(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(64)
        while os.getppid() == parent:
            readable, _, _ = select([listener], [], [], REAP_SECONDS)
            while True:  # reap the monitors that ended
                try:
                    if waitpid(-1, os.WNOHANG)[0] == 0:
                        break
                except ChildProcessError:
                    break
            if not readable:
                continue
            connection, _ = listener.accept()
            if fork() == 0:
                _monitor(connection, listener, served)
            connection.close()


if __name__ == "__main__":
    socket_path, served_module, *preload = sys.argv[1:]
    for name in preload:
        importlib.import_module(name)
    # What the imports made lives as long as the server: frozen (out of the collector's reach), a child's collections
    # and its exit no longer walk it, nor copy the pages it lies in (a forked ``locust --version`` took 0.17 CPU-s,
    # 0.06 frozen; ``python -m reports --help`` 0.31, 0.09; a reference server's 0.08, 0.04).
    gc.collect()
    gc.freeze()
    serve(socket_path, served_module)
