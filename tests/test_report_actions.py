"""The report's figures around an action: time to recover, failed calls, worst latency (from the stats history)."""

from __future__ import annotations

import numpy as np

from reports.actions import ActionFigures, measure_around


def action(phase: int, started_at: float) -> ActionFigures:
    return ActionFigures(phase, 0.0, "deploy", "ok", "0", 1.0, "", started_at)


def test_a_disruption_is_measured_from_the_action_to_the_last_disrupted_interval():
    seconds = np.arange(0.0, 11.0)  # rows at 0..10 s, intervals of 1 s
    rps = np.array([100, 100, 100, 100, 40, 100, 50, 95, 100, 100], dtype=float)
    failures = np.array([0, 0, 0, 0, 7, 3, 0, 0, 0, 0], dtype=float)
    p99 = np.array([5, 5, 5, 5, 5, 900, 400, 6, 5, 5, 5], dtype=float)
    deploy = action(1, 1000.0 + 4.0)
    measure_around([deploy], 1000.0, seconds, rps, failures, p99)
    assert deploy.start_seconds == 4.0 and deploy.disrupted
    assert deploy.time_to_recover == 3.0, "4-5 and 5-6 failed, 6-7 was slow; from 7 on three intervals at >= 90%"
    assert deploy.failed_calls == 10 and deploy.worst_p99_ms == 900


def test_a_single_slow_interval_long_after_the_recovery_does_not_extend_it():
    seconds = np.arange(0.0, 13.0)
    rps = np.array([100, 100, 100, 100, 0, 100, 100, 100, 100, 100, 50, 100], dtype=float)
    failures = np.array([0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0], dtype=float)
    deploy = action(1, 4.0)
    measure_around([deploy], 0.0, seconds, rps, failures, np.full(13, 5.0))
    assert deploy.time_to_recover == 1.0 and deploy.failed_calls == 9


def test_an_action_without_effect_recovers_at_once_and_one_that_never_recovers_says_so():
    seconds = np.arange(0.0, 9.0)
    rps = np.array([100, 100, 100, 100, 100, 100, 0, 0], dtype=float)
    failures = np.array([0, 0, 0, 0, 0, 0, 50, 50], dtype=float)
    p99 = np.full(9, 5.0)
    harmless, fatal = action(1, 2.0), action(2, 6.0)
    measure_around([harmless, fatal], 0.0, seconds, rps, failures, p99)
    assert (harmless.disrupted, harmless.time_to_recover, harmless.failed_calls) == (False, 0.0, 0)
    assert fatal.disrupted and fatal.time_to_recover is None and fatal.failed_calls == 100
