"""The --csv files of a process that quits before any test: Locust's own, written by this process, go; an earlier
run's stay (a Ctrl-C while Locust starts: its handler knows only the command line). A process that quits after a test
lets Locust's writer pass once more, and no longer."""

from __future__ import annotations

import csv
import os
import time

import gevent
from locust.env import Environment
from locust.stats import PERCENTILES_TO_REPORT, StatsCSVFileWriter

from grpc_user.locust.run.csv_files import LOCUST_CSV_FILES, csv_prefix_of_command_line, remove_locust_csv_files
from grpc_user.locust.run.csv_writer_passes import count_csv_writer_passes, wait_for_a_csv_writer_pass


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


def test_a_quitting_process_waits_for_the_next_pass_of_locusts_csv_writer_and_its_files_hold_what_came_before(tmp_path):
    """Locust's own writer on a real ``Environment``, its passes counted: the wait ends at the first pass after it,
    a call logged just before it is in the files, and one more history row was written (Locust's pinned private
    ``StatsCSVFileWriter._stats_history_data_rows``: without it the wait would be an uncounted sleep, False)."""
    environment = Environment()
    environment.create_local_runner()
    assert count_csv_writer_passes(environment)
    writer = StatsCSVFileWriter(environment, PERCENTILES_TO_REPORT, str(tmp_path / "run"), full_history=True)
    writing = gevent.spawn(writer.stats_writer)
    try:
        gevent.sleep(0.1)  # the first pass, at once
        environment.stats.log_request("grpc", "WriteLog", 5, 10)
        assert wait_for_a_csv_writer_pass(environment)
    finally:
        writing.kill()
        writer.close_files()
    with open(tmp_path / "run_stats.csv", newline="") as stats:
        assert {row["Name"]: row["Request Count"] for row in csv.DictReader(stats)} == {
            "WriteLog": "1",
            "Aggregated": "1",
        }
    with open(tmp_path / "run_stats_history.csv", newline="") as history:
        totals = [row["Total Request Count"] for row in csv.DictReader(history) if row["Name"] == "Aggregated"]
    assert totals == ["0", "1"], totals
