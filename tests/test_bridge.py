"""The gevent-compatible grpc.aio transport, in a monkey-patched subprocess against a slow reference server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from locust_runs import shared_answer

from reference_server.process import start_server_process

# Real Locust runs or processes of several seconds each: make test runs them, make test-fast does not.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def _probe() -> dict:
    with start_server_process("--latency-ms", "200") as server:
        done = subprocess.run([sys.executable, "tests/bridge_probe.py", server.target], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> dict:
    """Measurements of tests/bridge_probe.py against a server answering every call after 200 ms, made once per
    session for every test process."""
    return shared_answer(tmp_path_factory, worker_id, "bridge-probe", _probe)


def test_calls_block_only_their_own_greenlet(probe):
    assert probe["concurrent_seconds"] < 1.0, "50 calls of 200 ms each must overlap"
    assert probe["ticks_during_calls"] >= 5, "other greenlets keep running while calls wait"


def test_a_killed_caller_returns_at_once(probe):
    assert probe["victim_dead"]
    assert probe["kill_seconds"] < 0.5


def test_deadlines_are_enforced_on_the_greenlet_loop(probe):
    assert probe["deadline_status"] == "DEADLINE_EXCEEDED"
    assert probe["deadline_seconds"] < 0.5
