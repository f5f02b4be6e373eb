"""The test's end, known on every process: the master's options carry it to the workers (Locust keeps ``-t`` on the
master), and a web UI ``/swarm`` sets it as Locust's timer will: the form's run time, none when left empty whatever
``-t`` said, moved at once by a ``/swarm`` of a running test. In-process, on a real Locust environment and runner."""

from __future__ import annotations

import argparse
import math
import time
from types import SimpleNamespace

import locust
import pytest
from locust.env import Environment
from locust.runners import STATE_RUNNING
from werkzeug.datastructures import MultiDict

from grpc_user.locust.run.known_end import TEST_ENDS_AT_OPTION, known_test_end, run_time_seconds, set_test_end
from grpc_user.locust.run.state import suite_run
from grpc_user.locust.web.start import note_run_time
from grpc_user.locust.workloads import SingleWriteUser

WEB_UI = SimpleNamespace(userclass_picker_is_active=False)


@pytest.fixture
def environment():
    environment = Environment(events=locust.events, user_classes=[SingleWriteUser],
                              parsed_options=argparse.Namespace(run_time=720))  # fmt: skip
    environment.create_local_runner()
    yield environment
    environment.runner.quit()


def test_the_end_travels_as_one_of_the_options_locust_sends_its_workers(environment):
    set_test_end(environment, 12.0, now=1000.0)
    assert known_test_end(environment) == 1012.0
    # Locust's spawn message carries vars(parsed_options) but for Locust's own options (run_time among them).
    assert vars(environment.parsed_options)[TEST_ENDS_AT_OPTION] == 1012.0
    set_test_end(environment, None, now=1000.0)
    assert math.isinf(known_test_end(environment))


def test_a_swarm_form_left_without_a_run_time_starts_a_test_with_no_known_end_whatever_t_said(environment):
    note_run_time(environment, WEB_UI, MultiDict({"user_count": "2", "spawn_rate": "2", "run_time": ""}))
    assert suite_run(environment).swarm_run_time == (None,)  # its test_start takes it, not -t's 720 s
    note_run_time(environment, WEB_UI, MultiDict({"user_count": "2", "spawn_rate": "2", "run_time": "1m30s"}))
    assert suite_run(environment).swarm_run_time == (90.0,)


def test_a_swarm_of_a_running_test_moves_its_end_at_once(environment):
    environment.runner.state = STATE_RUNNING
    note_run_time(environment, WEB_UI, MultiDict({"user_count": "4", "spawn_rate": "2", "run_time": "30s"}))
    assert 29 < known_test_end(environment) - time.time() <= 30
    note_run_time(environment, WEB_UI, MultiDict({"user_count": "4", "spawn_rate": "2"}))  # Locust cancels its timer
    assert math.isinf(known_test_end(environment))


@pytest.mark.parametrize(("value", "seconds"), [(12, 12.0), ("1m30s", 90.0), ("", None), (0, None), ("soon", None)])
def test_a_run_time_reads_as_locust_keeps_it(value, seconds):
    assert run_time_seconds(value) == seconds
