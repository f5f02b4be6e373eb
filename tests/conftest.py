"""Fixtures shared by the tests that run Locust against reference servers in subprocesses, and a guard
that keeps Locust (and its gevent monkey-patching) out of the test process itself."""

from __future__ import annotations

import sys

import pytest
import unpatched_locust  # noqa: F401  (importing any grpc_user.locust module imports Locust: without its patching)

from reference_server.process import ServerProcess, start_server_process


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
