"""Locust's ``--csv`` files of a process that quits before any test ran: none left behind."""

from __future__ import annotations

import glob
import os
import sys
from pathlib import Path
from typing import Any

# The files Locust opens at its start for --csv PREFIX (PREFIX_<name>.csv); its writer puts headers in them at once.
LOCUST_CSV_FILES = ("stats", "stats_history", "failures", "exceptions")


def csv_prefix(environment: Any) -> str:
    """Locust's ``--csv`` prefix ('' without one)."""
    return getattr(environment.parsed_options, "csv_prefix", None) or ""


def remove_csv_files_of_no_test(environment: Any) -> None:
    """Remove the ``--csv`` files of a process that quits before any test: Locust's own (headers and zero rows at
    most) and any other empty one, so that no run folder looks like a run (``make`` then removes the empty
    folder)."""
    prefix = csv_prefix(environment)
    if not prefix:
        return
    folder, name = Path(prefix).parent, Path(prefix).name
    locusts = {f"{name}_{file}.csv" for file in LOCUST_CSV_FILES}
    for path in folder.glob(f"{glob.escape(name)}_*.csv"):
        if path.name in locusts or path.stat().st_size == 0:
            path.unlink(missing_ok=True)


def csv_prefix_of_command_line(argv: list[str] | None = None) -> str:
    """The ``--csv`` prefix as given on the command line (``--csv P``, ``--csv=P``) or in ``LOCUST_CSV``, before
    Locust has parsed its options ('' without one)."""
    args = sys.argv[1:] if argv is None else argv
    for index, arg in enumerate(args):
        if arg == "--csv" and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith("--csv="):
            return arg.split("=", 1)[1]
    return os.environ.get("LOCUST_CSV", "")


def remove_locust_csv_files(prefix: str, since: float) -> None:
    """Remove Locust's own ``--csv`` files written since ``since`` (epoch s: this process's, never an earlier run's)."""
    if not prefix:
        return
    for name in LOCUST_CSV_FILES:
        path = Path(f"{prefix}_{name}.csv")
        try:
            if path.stat().st_mtime >= since:
                path.unlink()
        except OSError:
            continue
