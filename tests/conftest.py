"""Fixtures shared by the tests that run Locust against reference servers in subprocesses, and a guard
that keeps Locust (and its gevent monkey-patching) out of the test process itself."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import unpatched_locust  # noqa: F401  (importing any grpc_user.locust module imports Locust: without its patching)
from forkserver_pool import ForkServerPool, request_forkservers

from reference_server.process import STOP_TIMEOUT_SECONDS, ServerProcess

_POOL = pytest.StashKey["ForkServerPool"]()
# The tests that take 10-30 s each on a quiet 2-core machine (a capacity search's 3 s steps, 15 s runs, a restart
# under load, a lost worker's timeout, a slow store's backlog), longest first: they start first, spread over the test
# processes, so that none of them starts late and ends the run alone (pytest_collection_modifyitems). Measured per
# test: test_capacity.py, test_freshness.py and test_freshness_windows.py at -n 2 beside other sessions' load, the
# others one at a time (-n 0); test_ordering.py checks that each one names a test that exists.
LONGEST = (
    "test_capacity.py::test_the_search_finds_the_storage_rate_in_batches_and_sweeps_batch_sizes",
    "test_open_model.py::test_a_distributed_open_model_keeps_its_total_rate_when_the_users_change",
    "test_capacity.py::test_a_step_is_judged_on_its_own_whatever_bad_step_came_before_it",
    "test_audit.py::test_a_service_still_storing_other_logs_is_waited_for_and_never_called_lost",
    "test_freshness.py::test_a_capacity_step_whose_logs_become_visible_too_late_is_bad_and_the_answer_says_freshness",
    "test_replicas.py::test_replicas_with_different_flush_periods_get_a_barrier_each_and_no_false_loss",
    "test_capacity.py::test_the_search_waits_for_a_slow_spawn_and_judges_steps_only_on_the_calls_they_made",
    "test_run_end.py::test_a_lost_worker_does_not_hang_the_end_of_the_run_and_its_audit_is_never_ok",
    "test_freshness_windows.py::test_at_the_defaults_a_light_load_on_a_store_slower_than_it_is_measured_within_a_seventh_of_the_truth",
    "test_freshness.py::test_with_a_slow_store_visibility_grows_through_the_run",
    "test_distributed.py::test_a_worker_joining_a_running_test_tags_its_logs_with_the_test_run_id_and_decides_nothing",
    "test_capacity.py::test_the_search_finds_the_storage_rate_of_writelog",
    "test_freshness_windows.py::test_a_light_load_that_keeps_up_is_measured_in_a_window_at_the_poll_interval_its_learning_samples_not_counted",
    "test_freshness_windows.py::test_at_the_defaults_lost_logs_samples_are_named_never_visible_within_the_share",
    "test_actions.py::test_a_restart_under_load_is_audited_per_phase_exactly_as_the_server_counted",
    "test_freshness_windows.py::test_at_the_defaults_a_store_slower_than_the_load_shows_visibility_growing_within_the_share",
    "test_freshness.py::test_workers_at_the_defaults_learn_the_store_once_and_get_a_figure_the_master_adds_up",
    "test_history.py::test_a_slower_newest_run_is_flagged_and_fails_the_gate",
    "test_freshness_windows.py::test_a_ten_second_light_run_gets_a_figure_of_a_two_second_flush_spread_over_it_within_its_stated_bound",
    "test_run_end.py::test_ctrl_c_to_every_worker_ends_the_test_and_a_worker_given_users_while_it_stops_makes_no_call",
    "test_run_end.py::test_a_worker_whose_own_ctrl_c_came_first_sends_its_final_counts_only_when_its_calls_in_flight_ended",
    "test_replicas.py::test_more_connections_than_a_server_allows_streams_per_connection_end_client_side_queueing",
    "test_open_model.py::test_a_stalled_service_shows_in_the_latency_instead_of_lowering_the_offered_rate",
    "test_freshness_windows.py::test_at_the_defaults_a_fifth_of_a_second_flush_is_visible_within_a_fifth_of_a_second_and_the_bound",
    "test_actions.py::test_an_action_in_distributed_mode_runs_once_on_the_master_and_workers_tag_its_phase",
    "test_nothing_hangs.py::test_a_long_audit_wait_logs_its_progress_without_a_terminal",
    "test_run_end.py::test_calls_in_flight_at_the_stop_finish_and_are_counted",
    "test_signals.py::test_a_ctrl_c_while_the_audit_waits_cuts_it_short_as_interrupted_and_writes_every_file",
    "test_web_ui.py::test_the_audit_shows_its_progress_then_its_verdict_by_itself",
    "test_open_model.py::test_a_locustfiles_own_wait_time_does_not_defeat_the_rate_options",
)
FORKED = Path(__file__).resolve().parent / "forked.py"


def pytest_configure(config: pytest.Config) -> None:
    """The session's first process (xdist's controller, or pytest without xdist) owns the fork servers every test
    process shares (tests/forkserver_pool.py); its workers inherit ``$FORKSERVER_POOL``."""
    if not hasattr(config, "workerinput"):
        config.stash[_POOL] = ForkServerPool()


def pytest_unconfigure(config: pytest.Config) -> None:
    pool = config.stash.get(_POOL, None)
    if pool is not None:
        pool.stop()


@pytest.fixture(autouse=True)
def _forked_commands(request: pytest.FixtureRequest) -> None:
    """The fork servers start with the first slow test (the ones that run Locust and the reports as processes) of any
    test process: the fast tier pays nothing for them."""
    if request.node.get_closest_marker("slow"):
        request_forkservers()


class ForkedServerProcess(ServerProcess):
    """``python -m reference_server`` through tests/forked.py: a fork of the fork server that imported the server's
    modules once (0.3 CPU-s of imports and start-up per server otherwise), or the command itself without one. Its
    process is the trampoline, which passes its signals on to the server. A SIGKILL would end the trampoline alone,
    and the fork server would kill the server a moment after ``kill`` returned: ``kill`` sends SIGUSR1 instead, which
    the server leaves to its default action, the end of the process at once (nothing flushed, as with SIGKILL); the
    trampoline ends with it."""

    python_m = (sys.executable, "-S", str(FORKED))

    def kill(self) -> None:
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGUSR1)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(STOP_TIMEOUT_SECONDS)
        super().kill()


@pytest.fixture
def serve():
    """Start reference servers (forked, fast flushes, room for every log of a short run unless the test sets
    --queue-size); kill whatever is left after the test."""
    started: list[ServerProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
        server = ForkedServerProcess("--flush-period", "0.1", "--queue-size", "100000", *args, env=env)
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


def _expected_order(item: pytest.Item) -> tuple[int, int]:
    """The longest tests (LONGEST's order), then the other slow ones, then the fast tier."""
    name = item.nodeid.split("[")[0].removeprefix("tests/")
    if name in LONGEST:
        return 0, LONGEST.index(name)
    return (1 if item.get_closest_marker("slow") else 2), 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Orders the tests for pytest-xdist's worksteal: it hands each of the N test processes a contiguous share of the
    collection at the start (the first ``len // N`` tests, then ``rest // (N - 1)`` ...), and an idle process takes
    the second half of the longest queue left. The tests are dealt in ``_expected_order`` over N shares of those
    sizes, one after the other: each process starts with a long test, and what is taken from a queue's end is short.
    N is ``$PYTEST_XDIST_WORKER_COUNT`` (1 without xdist). Every process sees the same order (the sort is stable)."""
    ordered = sorted(items, key=_expected_order)
    processes = max(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")), 1)
    sizes, left = [], len(ordered)
    for remaining in range(processes, 0, -1):
        sizes.append(left // remaining)
        left -= sizes[-1]
    shares: list[list[pytest.Item]] = [[] for _ in sizes]
    turn = 0
    for item in ordered:
        while len(shares[turn % processes]) == sizes[turn % processes]:
            turn += 1
        shares[turn % processes].append(item)
        turn += 1
    items[:] = [item for share in shares for item in share]


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
