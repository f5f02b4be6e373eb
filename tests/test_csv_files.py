"""The --csv files of a process that quits before any test: Locust's own, written by this process, go; an earlier
run's stay (a Ctrl-C while Locust starts: its handler knows only the command line)."""

from __future__ import annotations

import os
import time

from grpc_user.locust.run.csv_files import LOCUST_CSV_FILES, csv_prefix_of_command_line, remove_locust_csv_files


def test_the_prefix_comes_from_the_command_line_or_locusts_variable(monkeypatch):
    monkeypatch.delenv("LOCUST_CSV", raising=False)
    assert csv_prefix_of_command_line(["-u", "2", "--csv", "runs/a"]) == "runs/a"
    assert csv_prefix_of_command_line(["--csv=runs/b", "--headless"]) == "runs/b"
    assert csv_prefix_of_command_line(["--headless"]) == ""
    monkeypatch.setenv("LOCUST_CSV", "runs/c")
    assert csv_prefix_of_command_line(["--headless"]) == "runs/c"


def test_only_locusts_own_files_written_since_the_start_are_removed(tmp_path):
    earlier = tmp_path / "x_stats.csv"
    earlier.write_text("an earlier run's\n")
    os.utime(earlier, (time.time() - 60, time.time() - 60))
    since = time.time() - 0.1
    for name in LOCUST_CSV_FILES[1:]:
        (tmp_path / f"x_{name}.csv").write_text("")
    (tmp_path / "x_logs.csv").write_text("the suite's\n")
    remove_locust_csv_files(str(tmp_path / "x"), since)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["x_logs.csv", "x_stats.csv"]
