"""Run real headless Locust as a subprocess and read the files it writes."""

from __future__ import annotations

import csv
import dataclasses
import fcntl
import functools
import json
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Pacing for runs whose claim is about counts, files, verdicts or exit codes, not volume: the users share 100 calls/s
# in total (Locust's closed model, --target-rps) instead of one core each for Locust and the server, flat out.
PACED = ("--target-rps", "100")


def python_m(module: str) -> tuple[str, ...]:
    """``python -m module`` as the tests run it: a fork of a server that imported the module's libraries once
    (tests/forkserver.py, started once per pytest session: tests/forkserver_pool.py) where there is one for it,
    instead of an interpreter that imports them again (0.9 CPU-s for Locust, 2 for the reports). The trampoline
    imports only the standard library: ``-S`` spares it the site-packages' set-up (0.018 CPU-s of its 0.06)."""
    return sys.executable, "-S", str(ROOT / "tests" / "forked.py"), module


LOCUST = python_m("locust")
# Where a test looks at the Locust process itself, by its pid (its children, its sockets).
REAL_LOCUST = (sys.executable, "-m", "locust")


@dataclass
class LocustRun:
    """A finished Locust process and its CSV prefix."""

    returncode: int
    stdout: str
    stderr: str
    prefix: str

    def rows(self, suffix: str) -> list[dict[str, str]]:
        """Rows of ``<prefix>_<suffix>.csv``."""
        with open(f"{self.prefix}_{suffix}.csv", newline="") as handle:
            return list(csv.DictReader(handle))

    def stats(self) -> dict[str, dict[str, str]]:
        """Locust's ``_stats.csv`` rows by name."""
        return {row["Name"]: row for row in self.rows("stats")}

    def requests(self, name: str = "Aggregated") -> int:
        """Request count of one name (or all)."""
        return int(self.stats()[name]["Request Count"])

    def failures(self) -> dict[str, int]:
        """Locust's ``_failures.csv`` as error text -> occurrences (summed over names)."""
        counts: dict[str, int] = {}
        for row in self.rows("failures"):
            counts[row["Error"]] = counts.get(row["Error"], 0) + int(row["Occurrences"])
        return counts

    def logs(self) -> dict[str, dict[str, int]]:
        """The suite's ``_logs.csv`` rows by name, numbers as ints."""
        numbers = lambda row: {k: int(v) for k, v in row.items() if k not in ("Type", "Name")}  # noqa: E731
        return {row["Name"]: numbers(row) for row in self.rows("logs")}

    def json(self, suffix: str) -> dict:
        """``<prefix>_<suffix>.json``."""
        return json.loads(Path(f"{self.prefix}_{suffix}.json").read_text())


def logged_at(stderr: str, text: str) -> datetime:
    """When Locust logged its first line holding ``text``: its own clock, which a slow start-up does not move."""
    line = next(line for line in stderr.splitlines() if text in line)
    return datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f")


def logged_seconds(stderr: str, first: str, last: str) -> float:
    """Seconds between Locust's first log lines holding ``first`` and ``last`` (18.4 s from before the start were
    seen for a 2 s run at load 10 on 2 cores: its start-up does not count here)."""
    return (logged_at(stderr, last) - logged_at(stderr, first)).total_seconds()


@functools.cache
def _locust_csv_headers() -> dict[str, list[str]]:
    code = ("import json; from benchmarks.locust_csv import STATS_HEADER, HISTORY_HEADER; "
            "print(json.dumps({'stats': STATS_HEADER, 'stats_history': HISTORY_HEADER}))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def locust_csv_header(kind: str) -> list[str]:
    """Locust's own header of its ``stats`` or ``stats_history`` CSV, asked of one subprocess: importing
    Locust here would monkey-patch the test process for gevent and hang the in-process servers."""
    return _locust_csv_headers()[kind]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def distributed_args(processes: int) -> list[str]:
    """``--processes N`` on a free master port, so parallel runs never meet on Locust's default 5557, listening on
    loopback only (Locust's default is every interface)."""
    port = str(free_port())
    return ["--processes", str(processes), "--master-bind-host", "127.0.0.1", "--master-bind-port", port,
            "--master-port", port]  # fmt: skip


def run_locust(
    workload: str,
    host: str,
    tmp_path: Path,
    *args: str,
    users: int = 5,
    spawn_rate: int | None = None,
    run_time: str | None = None,
    timeout: float = 90,
    env: dict[str, str] | None = None,
    locustfile: str = "",
) -> LocustRun:
    """``locust -f locustfiles/<workload>.py --headless`` (or ``locustfile``) against ``host``, CSVs under tmp_path.
    ``run_time``: 3 s, or 60 s with ``--max-requests`` (the count ends the run; a loaded machine made 25 of 30 calls
    in 3 s)."""
    run_time = run_time or ("60s" if "--max-requests" in args else "3s")
    prefix = str(tmp_path / workload)
    # --audit-settle 1 for the audit's and the probe's waits; refused when both are off (it would have no effect).
    settle = () if {"--no-audit", "--no-freshness"} <= set(args) else ("--audit-settle", "1")
    command = [
        *LOCUST, "-f", locustfile or f"locustfiles/{workload}.py", "--headless",
        "-u", str(users), "-r", str(spawn_rate or users), "-t", run_time, "--host", host,
        "--csv", prefix, "--csv-full-history", *settle, *args,
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
    return LocustRun(done.returncode, done.stdout, done.stderr, prefix)


def shared_by_workers(tmp_path_factory: pytest.TempPathFactory, worker_id: str, name: str,
                      make: Callable[[Path], None]) -> Path:  # fmt: skip
    """A folder ``make(folder)`` fills once per pytest session, shared by every xdist worker (the first to ask makes
    it, the others wait on a lock and reuse it); read it, never change it. Without xdist, a folder of this session."""
    if worker_id == "master":
        folder = tmp_path_factory.mktemp(name)
        make(folder)
        return folder
    root = tmp_path_factory.getbasetemp().parent  # the session's folder, above each worker's own
    folder, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            folder.mkdir(exist_ok=True)
            make(folder)
            done.touch()
    return folder


def shared_answer(tmp_path_factory: pytest.TempPathFactory, worker_id: str, name: str, make: Callable[[], Any]) -> Any:
    """What ``make()`` returns (JSON: dicts, lists, text, numbers), made once per pytest session for every xdist worker
    (``shared_by_workers``). For a module-scoped fixture that measures or runs something: the tests of a module are
    dealt over the test processes (conftest.py), so a module fixture of its own ran once in each of them."""

    def store(folder: Path) -> None:
        (folder / "answer.json").write_text(json.dumps(make()))

    return json.loads((shared_by_workers(tmp_path_factory, worker_id, name, store) / "answer.json").read_text())


def shared_run(tmp_path_factory: pytest.TempPathFactory, worker_id: str, name: str,
               make: Callable[[Path], tuple[LocustRun, dict]]) -> tuple[LocustRun, dict]:  # fmt: skip
    """One real run ``make(folder)`` returns (the Locust run, what its server counted at its stop), made once per
    pytest session for every xdist worker (``shared_by_workers``): for tests that check different facets of it."""

    def store(folder: Path) -> None:
        run, counted = make(folder)
        (folder / "shared_run.json").write_text(json.dumps({"run": dataclasses.asdict(run), "server": counted}))

    saved = json.loads((shared_by_workers(tmp_path_factory, worker_id, name, store) / "shared_run.json").read_text())
    return LocustRun(**saved["run"]), saved["server"]
