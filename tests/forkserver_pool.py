"""The fork servers (tests/forkserver.py) of one pytest session, shared by all its test processes.

Each server imports its module's libraries once (Locust 1 CPU-s, the reports' pandas and matplotlib 1.5): started per
pytest-xdist worker, that cost was paid once per test process (6 times at ``make test``'s 6). The session's first
process (xdist's controller, or pytest itself without xdist) owns them instead: it listens on a Unix socket
(``$FORKSERVER_POOL``, set before the workers start, which inherit it) and starts the servers when the first slow test
of any process asks for them (``request_forkservers``), so a run of fast tests alone starts none. They are the
controller's children: it reaps them, and their CPU counts in the session's. Each server exits when the controller
does (tests/forkserver.py's ``serve``), or when ``stop`` terminates it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

FORKSERVER = Path(__file__).resolve().parent / "forkserver.py"
# The modules the tests run as ``python -m`` through tests/forked.py, and what each one's fork server preloads: for
# Locust, the libraries the suite's plugin imports too (0.05 of the 0.41 CPU-s a 1 s run took), not the plugin; for
# the reports, matplotlib too, which they import only when they draw a chart (reports/charts.py's new_figure).
FORKSERVERS = {
    "locust": (
        "locust.main",
        "grpc",
        "grpc_user.client",
        "grpc_user.histograms",
        "grpc_user.run_files",
        "prometheus_client",
        "tqdm",
    ),
    "reports": ("reports.cli", "matplotlib.figure", "matplotlib.backends.backend_agg"),
    "reference_server": ("grpc", "reference_server.server", "reference_server.settings"),
}
POOL_VARIABLE = "FORKSERVER_POOL"
READY_SECONDS = 30


def server_variable(module: str) -> str:
    """The variable that names ``module``'s fork server to tests/forked.py: ``FORKSERVER_LOCUST``."""
    return f"FORKSERVER_{module.upper()}"


class ForkServerPool:
    """The session's fork servers, started on the first request to its socket (``$FORKSERVER_POOL``)."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="forkservers-"))  # short: a Unix socket's path has 107 bytes
        self._servers: dict[str, subprocess.Popen] = {}
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.folder / "pool"))
        self._listener.listen(64)
        self._lock = threading.Lock()
        threading.Thread(target=self._answer, name="forkserver-pool", daemon=True).start()
        os.environ[POOL_VARIABLE] = str(self.folder / "pool")

    def _answer(self) -> None:
        """Per request: start the servers once, wait until they listen, answer with the modules that do."""
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed by stop
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            with self._lock:
                ready = self._start()
            connection.sendall((" ".join(ready) + "\n").encode())

    def _start(self) -> list[str]:
        if not self._servers:
            for module, preload in FORKSERVERS.items():
                command = [sys.executable, str(FORKSERVER), str(self.folder / module), module, *preload]
                self._servers[module] = subprocess.Popen(
                    command, cwd=FORKSERVER.parent.parent, stdin=subprocess.DEVNULL
                )
        deadline = time.monotonic() + READY_SECONDS
        for module, server in self._servers.items():
            while not (self.folder / module).exists() and server.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
        return [module for module in self._servers if (self.folder / module).exists()]

    def stop(self) -> None:
        """Stop the servers and remove their folder."""
        self._listener.close()
        os.environ.pop(POOL_VARIABLE, None)
        with self._lock:
            for server in self._servers.values():
                server.terminate()
            for server in self._servers.values():
                server.wait(30)
        shutil.rmtree(self.folder, ignore_errors=True)


def request_forkservers() -> None:
    """In a test process: ask the session's pool for its fork servers (started by the first request, up to 30 s),
    and name each one that listens to tests/forked.py (``$FORKSERVER_<MODULE>``); the others' commands exec. Without
    a pool (a pytest without this conftest's session start) nothing is named."""
    path = os.environ.get(POOL_VARIABLE)
    if not path or any(server_variable(module) in os.environ for module in FORKSERVERS):
        return
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as pool:
        pool.settimeout(READY_SECONDS + 30)
        pool.connect(path)
        ready = pool.makefile("r").readline().split()
        for module in ready:
            os.environ[server_variable(module)] = str(Path(path).parent / module)
