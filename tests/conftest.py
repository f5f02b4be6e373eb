"""Fixtures shared by the tests that run Locust against reference servers in subprocesses, and a guard
that keeps Locust (and its gevent monkey-patching) out of the test process itself."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import unpatched_locust  # noqa: F401  (importing any grpc_user.locust module imports Locust: without its patching)

from reference_server.process import ServerProcess, start_server_process

FORKSERVER = Path(__file__).resolve().parent / "forkserver.py"
# The modules the tests run as ``python -m`` through tests/forked.py, and what each one's fork server preloads.
FORKSERVERS = {"locust": ("locust.main", "grpc", "grpc_user.client"), "reports": ("reports.cli",)}


@pytest.fixture(scope="session")
def _forkservers(tmp_path_factory: pytest.TempPathFactory):
    """Starts, once, the fork servers (tests/forkserver.py) every ``python_m`` command of this pytest process goes
    through, named to them by ``$FORKSERVER_<MODULE>``; a server that did not start in 30 s is left out (its commands
    exec). Stopped at the end of the session."""
    servers: dict[str, subprocess.Popen] = {}

    def start() -> None:
        if servers:
            return
        folder = tmp_path_factory.mktemp("forkservers")
        for module, preload in FORKSERVERS.items():
            command = [sys.executable, str(FORKSERVER), str(folder / module), module, *preload]
            servers[module] = subprocess.Popen(command, cwd=FORKSERVER.parent.parent, stdin=subprocess.DEVNULL)
        for module, server in servers.items():
            deadline = time.monotonic() + 30
            while not (folder / module).exists() and server.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            if (folder / module).exists():
                os.environ[f"FORKSERVER_{module.upper()}"] = str(folder / module)

    yield start
    for module, server in servers.items():
        os.environ.pop(f"FORKSERVER_{module.upper()}", None)
        server.terminate()
        server.wait(30)


@pytest.fixture(autouse=True)
def _forked_commands(request: pytest.FixtureRequest) -> None:
    """The fork servers start with the first slow test (the ones that run Locust and the reports as processes): the
    fast tier pays nothing for them."""
    if request.node.get_closest_marker("slow"):
        request.getfixturevalue("_forkservers")()


@pytest.fixture
def serve():
    """Start reference servers (subprocesses, fast flushes, room for every log of a short run unless
    the test sets --queue-size); kill whatever is left after the test."""
    started: list[ServerProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
        server = start_server_process("--flush-period", "0.1", "--queue-size", "100000", *args, env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


def grpc_host(server: ServerProcess) -> str:
    """The server as a Locust ``--host``."""
    return f"grpc://{server.target}"


def _gevent_patched() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and monkey.is_module_patched("threading")


def pytest_collection_finish(session: pytest.Session) -> None:
    """Importing Locust patches threads into greenlets: in-process servers would then hang, not fail."""
    if _gevent_patched():
        raise pytest.UsageError(
            "a test module imported Locust (gevent monkey-patching) into the test process; "
            "run Locust in a subprocess (tests/locust_runs.py) instead"
        )


@pytest.fixture(autouse=True)
def _locust_stays_out_of_the_test_process():
    yield
    assert not _gevent_patched(), "this test imported Locust into the test process; later in-process servers hang"
