"""Run the reference server as a subprocess: for Locust runs (gevent-patched processes) and scripts."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from reference_server.listen import listen_address

START_TIMEOUT_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 30.0
RESTART_POLL_SECONDS = 0.02
# Exported by ``reference_server.around`` to the command it runs, so that an action can restart the server.
PID_VARIABLE = "REFERENCE_SERVER_PID"
STATS_FILE_VARIABLE = "REFERENCE_SERVER_STATS_FILE"


def read_stats(stats_file: str | Path) -> dict[str, Any]:
    """The counters a server last wrote to its ``--stats-file``."""
    return json.loads(Path(stats_file).read_text())


def restart_server(pid: int, stats_file: str | Path, timeout: float = STOP_TIMEOUT_SECONDS) -> dict[str, Any]:
    """SIGHUP the server ``pid`` and wait until it serves again (its stats file counts one more restart); return
    its counters then. Raises ProcessLookupError when no such process, TimeoutError when it is not back in time."""
    before = read_stats(stats_file)["restarts"]
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = read_stats(stats_file)
        if stats["restarts"] > before:
            return stats
        time.sleep(RESTART_POLL_SECONDS)
    raise TimeoutError(f"the reference server (pid {pid}) was not serving again {timeout:g} s after SIGHUP")


def server_files(cli_args: tuple[str, ...], folder: Path) -> tuple[Path, Path, list[str]]:
    """The server's ready file and stats file: the ones ``cli_args`` name (``--ready-file``, ``--stats-file``, with
    a space or ``=``; the last one given, as the server reads them), else ``port`` and ``stats.json`` in ``folder``;
    and the other arguments, in order."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False, exit_on_error=False)
    parser.add_argument("--ready-file", default=str(folder / "port"))
    parser.add_argument("--stats-file", default=str(folder / "stats.json"))
    try:
        given, rest = parser.parse_known_args(list(cli_args))
    except argparse.ArgumentError:  # an option without its value: the server's own parser says so
        return folder / "port", folder / "stats.json", list(cli_args)
    return Path(given.ready_file), Path(given.stats_file), rest


class ServerProcess:
    """A running ``python -m reference_server`` on a free loopback port. ``stats_file`` is the file its counters
    are written to: the caller's ``--stats-file`` if given, else one in a temporary folder (as the ready file)."""

    # What runs ``python -m MODULE ARGS``: this interpreter. A subclass may run the module another way, with the same
    # arguments (the tests fork it from a process that imported the server once: tests/conftest.py).
    python_m: tuple[str, ...] = (sys.executable, "-m")

    def __init__(self, *cli_args: str, env: dict[str, str] | None = None, cpu_core: int | None = None) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="reference-server-")
        folder = Path(self._folder.name)
        self._ready_file, self.stats_file, other_args = server_files(cli_args, folder)
        self._ready_file.unlink(missing_ok=True)  # a previous server's port is not this one's
        self._log = open(folder / "server.log", "w+")
        command = [*self.python_m, "reference_server", "--host", "127.0.0.1", "--port", "0",
                   "--ready-file", str(self._ready_file), "--stats-file", str(self.stats_file),
                   *other_args]  # fmt: skip
        pin = (lambda: os.sched_setaffinity(0, {cpu_core})) if cpu_core is not None else None
        # Its own session: a terminal's Ctrl-C meant for the load generator must not stop the server it audits.
        self._process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
                                         env={**os.environ, **(env or {})}, preexec_fn=pin)  # fmt: skip
        self.pid = self._process.pid
        self.port = self._wait_until_serving()
        self.target = listen_address(_served_host(other_args), self.port)  # [::1]:PORT for --host ::1

    def _wait_until_serving(self) -> int:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._ready_file.exists() and self._ready_file.read_text():
                return int(self._ready_file.read_text())
            if self._process.poll() is not None:
                raise RuntimeError(f"reference server exited with {self._process.returncode}: {self.log().strip()}")
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"reference server not serving after {START_TIMEOUT_SECONDS:g} s: {self.log().strip()}")

    def log(self) -> str:
        """What the server wrote to stdout and stderr so far."""
        self._log.flush()
        self._log.seek(0)
        return self._log.read()

    def stats(self) -> dict[str, Any]:
        """The counters as last written (after each flush)."""
        return read_stats(self.stats_file)

    def restart(self) -> dict[str, Any]:
        """SIGHUP: a stop as ``--on-stop`` says, then serving again on the same port; return the counters then."""
        return restart_server(self.pid, self.stats_file)

    def stop(self) -> dict[str, Any]:
        """SIGTERM: the server stops accepting, flushes everything queued; return its final counters. Raises
        OSError or ValueError when its stats file cannot be read (removed, or not JSON)."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            self._process.wait(STOP_TIMEOUT_SECONDS)
        try:
            return self.stats()
        finally:
            self._cleanup()

    def kill(self) -> None:
        """SIGKILL, as a crash would: queued logs are lost."""
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait(STOP_TIMEOUT_SECONDS)
        self._cleanup()

    def _cleanup(self) -> None:
        self._log.close()
        self._folder.cleanup()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.kill()


def start_server_process(
    *cli_args: str, env: dict[str, str] | None = None, cpu_core: int | None = None
) -> ServerProcess:
    """Start the reference server on a free 127.0.0.1 port; return once it serves."""
    return ServerProcess(*cli_args, env=env, cpu_core=cpu_core)


def _served_host(cli_args: list[str]) -> str:
    """The host the server is told to serve on: the last ``--host`` in ``cli_args``, as the server reads it, else the
    loopback address this class gives it first."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False, exit_on_error=False)
    parser.add_argument("--host", default="127.0.0.1")
    try:
        return str(parser.parse_known_args(cli_args)[0].host)
    except argparse.ArgumentError:  # --host without its value: the server's own parser says so
        return "127.0.0.1"
