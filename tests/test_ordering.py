"""The order conftest.py gives pytest-xdist's worksteal: the longest tests first, one per test process."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import LONGEST, pytest_collection_modifyitems

TESTS = Path(__file__).resolve().parent


class Collected:
    """What the ordering reads of a collected test: its node id and whether it is marked slow."""

    def __init__(self, nodeid: str, slow: bool = False) -> None:
        self.nodeid, self.slow = nodeid, slow

    def get_closest_marker(self, name: str) -> object:
        return object() if name == "slow" and self.slow else None


def test_every_longest_test_names_a_test_function_that_exists():
    for name in LONGEST:
        module, function = name.split("::")
        source = (TESTS / module).read_text()
        assert re.search(rf"^def {function}\(", source, re.MULTILINE), f"{name}: no such test (renamed? update LONGEST)"


@pytest.mark.parametrize("processes", [1, 2, 3, 5])
def test_each_test_process_starts_with_a_long_test_and_ends_with_the_fast_tier(monkeypatch, processes):
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", str(processes))
    fast = [Collected(f"tests/test_a.py::test_fast_{n}") for n in range(23)]
    slow = [Collected(f"tests/test_b.py::test_slow_{n}", slow=True) for n in range(11)]
    longest = [Collected(f"tests/{name}[param]", slow=True) for name in reversed(LONGEST[:processes])]
    items = [*fast, *slow, *longest]
    pytest_collection_modifyitems(None, items)
    assert sorted(map(id, items)) == sorted(map(id, [*fast, *slow, *longest])), "every test, once"
    # worksteal's first shares: len // N tests to the first process, then the rest // (N - 1), ...
    start, left = 0, len(items)
    for remaining in range(processes, 0, -1):
        size = left // remaining
        share = items[start : start + size]
        assert share[0].nodeid.startswith("tests/" + LONGEST[processes - remaining]), [i.nodeid for i in share]
        assert share[-1] in fast
        kinds = [0 if item in longest else 1 if item in slow else 2 for item in share]
        assert kinds == sorted(kinds), "long, slow, fast"
        start, left = start + size, left - size
