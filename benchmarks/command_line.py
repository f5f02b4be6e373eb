"""The command line of a benchmark that takes no options: ``--help`` prints what it measures and exits;
anything else is refused with exit code 2 (argparse's one line), before any server starts."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable


def run_benchmark(main: Callable[[], int | None], description: str | None) -> int:
    """Parse ``sys.argv`` (no options but ``--help``), then run ``main``; its return value is the exit code."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    program = f"python -m {spec.name}" if spec is not None else None
    parser = argparse.ArgumentParser(
        prog=program, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.parse_args()
    return main() or 0
