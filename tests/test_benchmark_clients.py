"""The clients ``make bench`` compares make exactly the calls asked, and the fast sink answers as a LogService."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable

import pytest
from locust_runs import ROOT, python_m, shared_answer

from benchmarks import connections, cpu_per_call
from benchmarks.__main__ import SECTIONS
from benchmarks.fast_sink import running_sink
from grpc_user import LogClient
from reference_server.process import start_server_process

# Real Locust runs or processes of several seconds each: make test runs them, make test-fast does not.
pytestmark = pytest.mark.slow

CALLS = 100


@pytest.fixture(scope="module")
def server():
    with start_server_process("--queue-size", "1000000", "--flush-period", "0.1") as running:
        yield running


Measure = Callable[[list[str]], tuple[float, float, str]]


def _forked(measure: Measure) -> Measure:
    """``measure`` of a Locust client (``python -m locust ...``) as a fork of the tests' Locust fork server
    (tests/forked.py): the same code and calls without an interpreter's imports (1.2 CPU-s per Locust client, 12 of
    them); the CPU measured is then the trampoline's, which these tests do not read. The grpc.aio module clients
    (bare loop, bridge alone) keep their own interpreter: forked from a server that imported grpc, they hung."""

    def forked(command: list[str]) -> tuple[float, float, str]:
        if command[:3] == [sys.executable, "-m", "locust"]:
            command = [*python_m("locust"), *command[3:]]
        return measure(command)

    return forked


@pytest.mark.parametrize("layer, client", cpu_per_call.LAYERS + connections.LAYERS[1:])
@pytest.mark.parametrize("batch_size", [0, 10])
def test_every_layer_makes_exactly_the_calls_asked(server, layer, client, batch_size, monkeypatch):
    """The calls, not the CPU figure's isolation: the client is not pinned to the benchmark's core, which every other
    process of the tests shares (pinned, 16 clients took 10-14 s each at make test -n 6, 1.6-2.8 s at -n 4)."""
    monkeypatch.setattr(cpu_per_call, "_pin_client", lambda: None)
    monkeypatch.setattr(cpu_per_call, "_measure", _forked(cpu_per_call._measure))
    measured = client(server.target, CALLS, batch_size)  # raises when another number of calls was made
    assert measured.calls == CALLS and measured.cpu > 0 and measured.wall > 0, layer


@pytest.mark.skipif(shutil.which("go") is None, reason="the fast sink needs Go (apt-get install golang-go "
                                                         "golang-google-grpc-dev)")  # fmt: skip
def test_the_fast_sink_answers_every_rpc_of_the_contract():
    with running_sink() as sink:
        assert sink is not None, "Go is here but grpc-go is not: apt-get install golang-google-grpc-dev"
        target, _ = sink
        with LogClient(target) as client:
            assert client.health().serving
            assert client.write_log("m", level="WARN", run_id="r").success
            batch = client.batch_write_logs([{"message": "a"}, {"message": "b"}])
            assert batch.success and batch.success_count == 2
            assert client.query_logs(service_name="s").success


BENCHMARKS = [module for _, module in SECTIONS] + ["benchmarks", "benchmarks.soak"]
# Each benchmark's command line as ``python -m`` runs it (runpy with sys.argv and __main__ replaced, as
# tests/forkserver.py runs a forked ``python -m``), all in one process: its exit code, stdout and stderr per argv. A
# process per command line (20 of them) took 10 CPU-s, mostly each one's imports and its exit.
COMMAND_LINES = """
import contextlib, io, json, runpy, sys
answers = {}
for module in sys.argv[1:]:
    for option in ("--help", "--bogus"):
        sys.argv = [module, option]
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                runpy.run_module(module, run_name="__main__", alter_sys=True)
                code = 0
            except SystemExit as exit_:
                code = exit_.code
        answers[f"{module} {option}"] = [code, stdout.getvalue(), stderr.getvalue()]
print(json.dumps(answers))
"""


def _command_lines() -> dict[str, list]:
    done = subprocess.run([sys.executable, "-c", COMMAND_LINES, *BENCHMARKS], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def command_lines(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> dict[str, list]:
    """``python -m <benchmark> --help`` and ``--bogus`` of every benchmark: [exit code, stdout, stderr] by command,
    asked once per session for every test process (2.5 CPU-s each time)."""
    return shared_answer(tmp_path_factory, worker_id, "benchmark-command-lines", _command_lines)


@pytest.mark.parametrize("section", BENCHMARKS)
def test_every_benchmark_answers_help_without_starting(section, command_lines):
    """``--help`` prints what the benchmark measures and exits 0 at once; an unknown option is refused with 2."""
    code, stdout, _ = command_lines[f"{section} --help"]
    assert code == 0 and stdout.startswith(f"usage: python -m {section}"), (code, stdout)
    code, _, stderr = command_lines[f"{section} --bogus"]
    assert code == 2 and "unrecognized arguments: --bogus" in stderr, (code, stderr)
