"""The knee search's decisions against a service whose capacity is known."""

from __future__ import annotations

import pytest

from grpc_user.locust.capacity.knee import KneeSearch


def search(capacity: float, start: float, precision: float = 0.1) -> tuple[KneeSearch, int]:
    knee, steps = KneeSearch(start, precision), 0
    while (rate := knee.next_rate()) is not None:
        knee.record(rate, rate <= capacity)
        steps += 1
        assert steps < 30, knee.tried
    return knee, steps


@pytest.mark.parametrize("capacity", [150.0, 800.0, 5000.0, 123456.0])
def test_the_knee_is_found_within_the_precision(capacity):
    knee, steps = search(capacity, start=100)
    assert knee.good <= capacity < knee.bad
    assert (knee.bad - knee.good) / (knee.bad + knee.good) <= 0.1
    assert steps <= 15


def test_a_start_above_the_capacity_searches_downwards():
    knee, _ = search(300.0, start=5000)
    assert knee.good <= 300 < knee.bad and knee.achieved_precision() <= 0.1


def test_a_service_that_fails_at_any_rate_ends_the_search_with_no_good_rate():
    knee, _ = search(0.0, start=100)
    assert knee.good == 0 and knee.next_rate() is None
