"""``promtool check metrics`` on an exposition: the Prometheus conventions a scrape must follow."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest


def promtool_check(text: str) -> subprocess.CompletedProcess[str]:
    """``promtool check metrics`` (Debian's prometheus package; ``make test`` installs it) on an exposition."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: make test installs Debian's prometheus package (apt-get install prometheus)"
    return subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)


def exposition(families: Iterable[Any]) -> str:
    """The text format of these metric families, as ``/metrics`` serves them."""

    class Families:
        def collect(self) -> Iterable[Any]:
            return families

    registry = CollectorRegistry()
    registry.register(Families())
    return generate_latest(registry).decode()
