"""The --csv files of a process that quits before any test: Locust's own, written by this process, go; an earlier
run's stay (a Ctrl-C while Locust starts: its handler knows only the command line). A process that quits after a test
writes the final figures into Locust's files at once."""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import Any

import gevent
from locust.env import Environment
from locust.stats import CSV_STATS_INTERVAL_SEC, PERCENTILES_TO_REPORT, StatsCSVFileWriter

from grpc_user.locust.run.csv_files import LOCUST_CSV_FILES, csv_prefix_of_command_line, remove_locust_csv_files
from grpc_user.locust.run.csv_writer_passes import count_csv_writer_passes, write_final_figures


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


def _history_totals(prefix) -> list[tuple[str, str]]:
    with open(f"{prefix}_stats_history.csv", newline="") as history:
        return [(row["Timestamp"], row["Total Request Count"]) for row in csv.DictReader(history)
                if row["Name"] == "Aggregated"]  # fmt: skip


def _watched_writer(tmp_path: Path, full_history: bool = False) -> tuple[Environment, Path, StatsCSVFileWriter, Any]:
    """A real ``Environment`` whose ``--csv`` writer's passes are watched, and Locust's writer loop on it, started:
    (environment, prefix, writer, its greenlet)."""
    environment = Environment()
    environment.create_local_runner()
    assert count_csv_writer_passes(environment)
    prefix = tmp_path / "run"
    writer = StatsCSVFileWriter(environment, PERCENTILES_TO_REPORT, str(prefix), full_history=full_history)
    return environment, prefix, writer, gevent.spawn(writer.stats_writer)


def test_a_quitting_process_writes_the_final_figures_at_once_and_its_files_hold_what_came_before(tmp_path):
    """Locust's own writer on a real ``Environment``, its passes watched (Locust's pinned private
    ``StatsCSVFileWriter._stats_history_data_rows``): a call logged after the writer's last pass is in every file when
    ``write_final_figures`` returns, without waiting for the next pass (it waited 0 to 1 s for it, the rest of the
    interval: 0.9 s here), and one history row stands per second, the last one holding the final figures."""
    environment, prefix, writer, writing = _watched_writer(tmp_path, full_history=True)
    try:
        gevent.sleep(0.1)  # the first pass, at once; the next one at 1 s
        first = _history_totals(prefix)
        environment.stats.log_request("grpc", "WriteLog", 5, 10)
        environment.stats.log_error("grpc", "WriteLog", "UNAVAILABLE")
        started = time.monotonic()
        assert write_final_figures(environment)
        elapsed = time.monotonic() - started
        finals = _history_totals(prefix)
        # The last pass: the loop ended (its next pass, before Locust's quit, repeated the history's last second)
        assert writing.dead
    finally:
        writing.kill()
        writer.close_files()
    # Waiting for the writer took the rest of its interval, 0.9 s; writing four small files takes milliseconds.
    assert elapsed < CSV_STATS_INTERVAL_SEC / 3, f"{elapsed:.2f} s: it waited for the writer's next pass"
    with open(tmp_path / "run_stats.csv", newline="") as stats:
        assert {row["Name"]: row["Request Count"] for row in csv.DictReader(stats)} == {
            "WriteLog": "1",
            "Aggregated": "1",
        }
    with open(tmp_path / "run_failures.csv", newline="") as failures:
        assert [(row["Name"], row["Occurrences"]) for row in csv.DictReader(failures)] == [("WriteLog", "1")]
    assert first == [(first[0][0], "0")], first
    if finals[0][0] == first[0][0] and len(finals) == 1:  # the same second: the last pass's row, final figures
        assert finals == [(first[0][0], "1")], finals
    else:
        assert finals == [first[0], (finals[1][0], "1")] and int(finals[1][0]) > int(first[0][0]), finals


def test_a_final_write_in_a_later_second_appends_a_history_row(tmp_path):
    """The history keeps its one row per second: a final write in the second after the last pass adds a row."""
    environment, prefix, writer, writing = _watched_writer(tmp_path)
    try:
        gevent.sleep(0.1)
        writing.kill()  # no more passes: the final write alone follows
        environment.stats.log_request("grpc", "WriteLog", 5, 10)
        gevent.sleep(1.05 - time.time() % 1)  # into the next second
        assert write_final_figures(environment)
    finally:
        writer.close_files()
    totals = _history_totals(prefix)
    assert [total for _, total in totals] == ["0", "1"] and int(totals[1][0]) > int(totals[0][0]), totals


def test_the_writer_ends_at_locusts_quit_event_so_no_pass_runs_on_the_files_locust_closes_next(tmp_path):
    """Locust's shutdown fires ``quit``, closes the ``--csv`` files and exits, and nothing ends the writer's loop: on
    Python 3.13 the exit let it run a pass on the closed files (``ValueError: I/O operation on closed file``, a
    traceback and exit code 2 after a run with calls in flight at ``-t``). Here the hub runs after the close, as it
    did there: the writer's loop ended at ``quit``, and the final figures it wrote are in the files."""
    environment, prefix, writer, writing = _watched_writer(tmp_path)
    gevent.sleep(0.1)  # the first pass, at once; the next one at 1 s
    environment.stats.log_request("grpc", "WriteLog", 5, 10)
    assert write_final_figures(environment)
    environment.events.quit.fire(exit_code=0)
    writer.close_files()
    gevent.sleep(CSV_STATS_INTERVAL_SEC + 0.2)  # past the writer's next pass
    assert writing.dead and writing.successful(), writing.exception
    with open(tmp_path / "run_stats.csv", newline="") as stats:
        assert {row["Name"]: row["Request Count"] for row in csv.DictReader(stats)}["Aggregated"] == "1"
