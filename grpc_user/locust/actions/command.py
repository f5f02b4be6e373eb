"""Run one action's shell command without blocking gevent's hub: bounded output, bounded time.

The command runs with ``/bin/sh -c`` in its own session and process group, so a command that hangs past
``--action-timeout`` is ended with everything it started (SIGTERM, then SIGKILL after a grace).
Only the first lines of its output are kept (stdout and stderr together), however much it writes; the rest is
counted (lines, bytes) and dropped. Its pipe is read one chunk per turn of the hub's loop with a pause after each, so
a command that writes without end (``yes``) neither starves the load nor holds off its timeout: it blocks on a full
pipe instead, at most ``READ_BYTES / READ_PAUSE_SECONDS`` bytes a second (100 MiB/s).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import gevent
import gevent.os
from gevent.socket import wait_read

from grpc_user.locust.settings.action_plan import Action

OUTPUT_LINES = 5
LINE_CHARS = 200
KILL_GRACE_SECONDS = 2.0
READER_JOIN_SECONDS = 1.0
READ_BYTES = 1 << 20  # the pipe is made this large (Linux allows 1 MiB unprivileged); 64 KiB if it cannot be
READ_PAUSE_SECONDS = 0.01
SHELL = "/bin/sh"
STATUSES = ("pending", "running", "ok", "failed", "timed_out", "not_started", "ended_by_stop")


@dataclass
class ActionOutcome:
    """What became of one action. ``status``: pending, running, ok (exit 0), failed (another exit code, or the
    command could not start), timed_out (killed after ``--action-timeout``), not_started (the test ended first),
    ended_by_stop (still running when the test ended: killed). Times are Unix seconds; ``exit_code`` None while
    unknown; ``output`` the first lines; ``output_lines`` and ``output_bytes`` how much it wrote in all."""

    phase: int
    at: float
    command: str
    status: str = "pending"
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    output: list[str] = field(default_factory=list)
    output_lines: int = 0
    output_bytes: int = 0
    detail: str = ""

    @property
    def duration(self) -> float | None:
        """Seconds from start to end (None until it ended)."""
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {**asdict(self), "duration": self.duration}

    def words(self) -> str:
        """The outcome in words: ``exited 0 after 2.8 s``, ``FAILED with exit code 3 after 0.1 s``, …"""
        took = f" after {self.duration:.1f} s" if self.duration is not None else ""
        if self.status == "failed":
            return f"FAILED with exit code {self.exit_code}{took}" if self.exit_code is not None \
                else f"FAILED to start: {self.detail}"  # fmt: skip
        return {
            "pending": "not started yet",
            "running": "running",
            "ok": f"exited 0{took}",
            "timed_out": f"TIMED OUT: killed{took} ({self.detail})",
            "not_started": "not started: the test ended first",
            "ended_by_stop": f"still running when the test ended: killed{took}",
        }.get(self.status, self.status)

    def sentence(self) -> str:
        """``action 1 "COMMAND" at 30 s: exited 0 after 2.8 s``, for the log."""
        return f"action {self.phase} {Action(self.phase, self.at, self.command).label()}: {self.words()}"


class RunningCommand:
    """A started command: its process group, and a greenlet keeping the first lines of its output.

    Spawned with gevent's ``posix_spawn`` (a vfork: no fork handlers run in a process whose gRPC threads are busy,
    which a fork, gevent's included, would break), which watches the child with the hub's child watcher; its exit
    status is then read with gevent's ``waitpid``, cooperatively. The hub's SIGCHLD handler reaps every child (it
    is installed as soon as anything is watched: ``--processes`` watches its workers), so the status must come from
    that watcher: the OS's own ``waitpid`` would find the child already reaped. The handler is installed before the
    spawn, so a command that exits at once is not missed either.
    """

    def __init__(self, outcome: ActionOutcome) -> None:
        self.outcome = outcome
        read_end, write_end = os.pipe()
        redirects = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0), (os.POSIX_SPAWN_DUP2, write_end, 1),
                     (os.POSIX_SPAWN_DUP2, write_end, 2)]  # fmt: skip
        gevent.get_hub().loop.install_sigchld()
        try:
            self.pid = gevent.os.posix_spawn(SHELL, [SHELL, "-c", outcome.command], dict(os.environ), setsid=True,
                                    setsigdef=(signal.SIGPIPE, signal.SIGXFSZ), file_actions=redirects)  # fmt: skip
        except OSError:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        self.exit_code: int | None = None
        self._output = read_end
        os.set_blocking(read_end, False)
        with contextlib.suppress(OSError):
            fcntl.fcntl(read_end, fcntl.F_SETPIPE_SZ, READ_BYTES)
        self._reader = gevent.spawn(self._read)

    def _read(self) -> None:
        """Until the pipe's end: one read per turn of the hub's loop and a pause; lines are split only until the
        first ``OUTPUT_LINES`` are kept, after that they are only counted."""
        partial, last = b"", b"\n"
        while True:
            wait_read(self._output)
            try:
                chunk = os.read(self._output, READ_BYTES)
            except BlockingIOError:
                continue
            if not chunk:
                break
            self.outcome.output_bytes += len(chunk)
            self.outcome.output_lines += chunk.count(b"\n")
            last = chunk[-1:]
            if len(self.outcome.output) < OUTPUT_LINES:
                partial = self._keep_lines(partial + chunk)
            gevent.sleep(READ_PAUSE_SECONDS)
        if last != b"\n":  # a last line without its newline
            self.outcome.output_lines += 1
            if partial:
                self._keep_lines(partial + b"\n")

    def _keep_lines(self, data: bytes) -> bytes:
        """Keep whole lines of ``data`` until ``OUTPUT_LINES`` are kept; return the start of the unfinished one."""
        while len(self.outcome.output) < OUTPUT_LINES:
            line, newline, data = data.partition(b"\n")
            if not newline:
                return line[: LINE_CHARS * 4]  # enough bytes for LINE_CHARS characters
            self.outcome.output.append(line.decode(errors="replace").rstrip()[:LINE_CHARS])
        return b""

    def wait(self, timeout: float) -> int | None:
        """The exit code (-N for signal N), or None when ``timeout`` seconds passed first."""
        if self.exit_code is None:
            with gevent.Timeout(timeout, False):  # type: ignore[arg-type]  # gevent's documented silent timeout
                _, status = gevent.os.waitpid(self.pid, 0)
                self.exit_code = os.waitstatus_to_exitcode(status)
        return self.exit_code

    def kill(self) -> int:
        """End the command and everything it started (its process group): SIGTERM, SIGKILL after a grace."""
        for signum, grace in ((signal.SIGTERM, KILL_GRACE_SECONDS), (signal.SIGKILL, KILL_GRACE_SECONDS)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signum)
            code = self.wait(grace)
            if code is not None:
                return code
        return -signal.SIGKILL

    def close(self) -> None:
        """Stop reading (a child the command left behind may hold the pipe open) and close the pipe."""
        self._reader.join(READER_JOIN_SECONDS)
        self._reader.kill(block=False)
        with contextlib.suppress(OSError):
            os.close(self._output)


def run_action(outcome: ActionOutcome, timeout: float) -> ActionOutcome:
    """Run the command of ``outcome`` to its end or ``timeout``; fill in status, times, exit code and output."""
    outcome.status, outcome.started_at = "running", time.time()
    try:
        running = RunningCommand(outcome)
    except OSError as error:
        outcome.status, outcome.ended_at, outcome.detail = "failed", time.time(), str(error)
        return outcome
    try:
        code = running.wait(timeout)
        if code is None:
            outcome.exit_code = running.kill()
            outcome.status, outcome.detail = "timed_out", f"--action-timeout {timeout:g} s"
        else:
            outcome.exit_code = code
            outcome.status = "ok" if code == 0 else "failed"
    except gevent.GreenletExit:  # the test ended while it ran
        outcome.exit_code = running.kill()
        outcome.status = "ended_by_stop"
        raise
    finally:
        outcome.ended_at = time.time()
        running.close()
    return outcome
