"""Freshness verdicts and figures that must never claim more than the samples show, in-process: a real
``FreshnessProbe`` finds its samples through ``observe`` (the QueryLog answer's bytes), ``figures()`` and the run
files' writers write what a run writes, and ``python -m reports`` (its ``main``) reads them back. A gate never passes
on samples whose visibility is unknown; no figure is stated without a sample; the poll interval is never stated
without the measured error bound; the history's regression check compares visibility; ``--json`` phases have
``_freshness.json``'s shape."""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import unpatched_locust  # noqa: F401  (before the capacity search imports Locust)
from locust_runs import locust_csv_header
from promtool import exposition, promtool_check

from grpc_user.locust.audit.delivery import verdict
from grpc_user.locust.capacity.search import Step, _broken
from grpc_user.locust.counts.phases import PhaseCounts, PhaseLogs
from grpc_user.locust.freshness.files import error_bound, figures, strip_sentence, summary_line
from grpc_user.locust.freshness.lifecycle import finish_probe
from grpc_user.locust.freshness.probe import PROBE_KEY, SAMPLE_KEY, FreshnessProbe, Sample
from grpc_user.locust.lifecycle.end import print_freshness_summary
from grpc_user.locust.settings.suite import CapacitySettings
from grpc_user.locust.web.metrics import PREFIX, SuiteCollector
from grpc_user.pb import log_service_pb2 as pb
from grpc_user.run_files import write_freshness, write_freshness_info
from grpc_user.run_files.freshness_words import sampled
from reports.cli import main as report_main
from reports.document import _visibility_samples
from reports.history import main as history_main

RUN_ID = "run-fresh"
INTERRUPTED = "the audit was interrupted"


class Samples:
    """A probe fed as a run feeds it: samples acknowledged, then each found by one QueryLog ``found_after_ms``
    later (the previous poll ``gap_ms`` before it), the rest ended as never visible or unknown."""

    def __init__(self) -> None:
        self.probe = FreshnessProbe(RUN_ID, 20, 0.1)
        self.number = 0

    def acked(self, count: int, phase: str = "", name: str = "WriteLog") -> list[Sample]:
        samples = []
        for _ in range(count):
            sample = Sample("", self.number, name, time.time(), phase=phase)
            self.number += 1
            self.probe.acked(sample, 1000.0)
            samples.append(sample)
        return samples

    def found(
        self, found_after_ms: list[float], gap_ms: float = 700.0, phase: str = "", name: str = "WriteLog"
    ) -> None:
        for latency in found_after_ms:
            (sample,) = self.acked(1, phase, name)
            sample.last_look = 1000.0 + max(latency - gap_ms, 0.0) / 1000  # the gap is at most the latency
            look = self.probe.look(1000.0)
            answer = pb.QueryLogResponse(success=True, logs=[pb.LogEntry(
                metadata={PROBE_KEY: RUN_ID, SAMPLE_KEY: str(sample.number)})])  # fmt: skip
            assert self.probe.observe(look, answer.SerializeToString(), 1000.0 + latency / 1000) == 1

    def figures(self) -> dict:
        return figures(self.probe, 20, "done")


def write_run(folder: Path, data: dict, requests: int = 1000) -> Path:
    """A run folder: Locust's stats of ``requests`` WriteLog calls in 10 s, and the freshness files of ``data``."""
    folder.mkdir(parents=True)
    header = locust_csv_header("stats")
    for name, kind in (("WriteLog", "grpc"), ("Aggregated", "")):
        row = dict.fromkeys(header, 5)
        row.update({"Type": kind, "Name": name, "Request Count": requests, "Failure Count": 0,
                    "Requests/s": requests / 10, "Failures/s": 0})  # fmt: skip
        with open(folder / "run_stats.csv", "a", newline="") as handle:
            writer = csv.DictWriter(handle, header)
            if name == "WriteLog":
                writer.writeheader()
            writer.writerow(row)
    write_freshness(str(folder / "run"), data)
    write_freshness_info(str(folder / "run"), data)
    return folder


def report(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = report_main([str(arg) for arg in args])
    out = capsys.readouterr()
    return code, out.out, out.err


# --- a gate never passes on unknown samples -----------------------------------------------------------------------


def test_the_visibility_gate_is_breached_when_no_sample_is_visible_and_all_are_unknown(tmp_path, capsys):
    fed = Samples()
    fed.acked(82)
    fed.probe.finish(INTERRUPTED)
    code, out, err = report(capsys, write_run(tmp_path / "r", fed.figures()), "--no-charts",
                            "--max-visibility-p95-ms", "100")  # fmt: skip
    assert code == 1 and "gate passed" not in out
    assert f"gate breached: --max-visibility-p95-ms 100: visibility unknown for 82 of 82 samples (not looked for " \
        f"long enough: {INTERRUPTED})" in err  # fmt: skip


def test_the_visibility_gate_is_breached_when_the_slowest_samples_are_unknown(tmp_path, capsys):
    fed = Samples()
    fed.found([100.0 + 75 * n for n in range(32)])  # 100..2,425 ms: p95 under 3 s
    fed.acked(35)
    fed.probe.finish(INTERRUPTED)
    code, _, err = report(capsys, write_run(tmp_path / "r", fed.figures()), "--no-charts",
                          "--max-visibility-p95-ms", "3000")  # fmt: skip
    assert code == 1 and "visibility unknown for 35 of 67 samples" in err, err


def test_the_visibility_gate_still_passes_on_a_run_whose_every_sample_is_known(tmp_path, capsys):
    fed = Samples()
    fed.found([100.0 + 10 * n for n in range(40)])
    code, out, _ = report(capsys, write_run(tmp_path / "r", fed.figures()), "--no-charts",
                          "--max-visibility-p95-ms", "1000")  # fmt: skip
    assert code == 0 and "gate passed: visibility latency p95 " in out


def test_a_capacity_step_with_no_visible_sample_is_not_good_on_freshness():
    step = Step(offered_rps=100, batch_size=None, seconds=4.8, achieved_rps=100, offered_logs_per_second=100,
                acked_logs_per_second=100, stored_logs_per_second=100, backlog_start=0, backlog_end=0,
                backlog_rise=0, p50_ms=1, p95_ms=2, p99_ms=3, failure_rate=0.0, failures={}, dropped=0,
                visibility_p95_ms=None, visibility_taken=3, visibility_visible=0, visibility_late=0)  # fmt: skip
    broken = _broken(step, CapacitySettings(slo_visibility_p95_ms=500.0))
    assert [cause["status"] for cause in broken] == ["FRESHNESS"]
    assert broken[0]["words"].startswith("freshness unknown: no sampled log of the step became visible")
    assert _broken(step, CapacitySettings()) == [], "without a freshness SLO the step is judged on the rest"


def test_a_capacity_steps_words_and_capacity_json_count_the_same_samples_each_field_one_thing():
    """capacity.json's visibility_samples counted the visible samples while the words said '21 of 86' (late plus
    visible, not the samples taken): each count is named for what it counts, and the words use the same ones."""
    master, worker = FreshnessProbe(RUN_ID, 20, 0.1), FreshnessProbe(RUN_ID, 20, 0.1, worker="w1")
    for probe in (master, worker):
        probe.late_after = 0.5
    master.start_window()
    for probe, late in ((master, 3), (worker, 2)):  # acknowledged now, late once the 0.5 s SLO has passed
        for number in range(late):
            probe.acked(Sample(probe.worker, number, "WriteLog", time.time()), time.monotonic())
    time.sleep(0.6)
    now = time.monotonic()
    for probe, first, young in ((master, 3, 2), (worker, 2, 1)):  # younger than the SLO: pending, not late
        for number in range(first, first + young):
            probe.acked(Sample(probe.worker, number, "WriteLog", time.time()), now)
    for number in (5, 6):  # two more of the master's samples, found visible 0.2 s after their acknowledgement
        master.acked(Sample("", number, "WriteLog", time.time()), now)
    answer = pb.QueryLogResponse(success=True, logs=[pb.LogEntry(metadata={PROBE_KEY: RUN_ID, SAMPLE_KEY: str(n)})
                                                     for n in (5, 6)])  # fmt: skip
    assert master.observe(master.look(now), answer.SerializeToString(), now + 0.2) == 2
    master.merge_report(worker.take_report(), "w1")
    p95, visible, late = master.window_p95_ms(time.monotonic())
    # 10 taken: 2 visible, 5 late (3 here, 2 at the worker), 3 younger than the SLO, pending
    assert (visible, late, master.window_taken) == (2, 5, 10) and p95 is None, (p95, visible, late)
    step = Step(offered_rps=100, batch_size=None, seconds=4.8, achieved_rps=100, offered_logs_per_second=100,
                acked_logs_per_second=100, stored_logs_per_second=100, backlog_start=0, backlog_end=0,
                backlog_rise=0, p50_ms=1, p95_ms=2, p99_ms=3, failure_rate=0.0, failures={}, dropped=0,
                visibility_taken=master.window_taken, visibility_visible=visible, visibility_late=late,
                visibility_pending=master.window_taken - visible - late)  # fmt: skip
    (cause,) = _broken(step, CapacitySettings(slo_visibility_p95_ms=500.0))
    assert cause["words"] == ("freshness: logs visible to QueryLog too late (5 of 10 samples still not visible > 500 "
                              "ms after their acknowledgement; 2 visible, 5 late, 3 pending (acknowledged less than "
                              "500 ms before the step's end) of 10 taken)")  # fmt: skip


def test_a_capacity_steps_samples_add_up_in_capacity_json_and_the_report(tmp_path, capsys):
    """A step of 96 samples said '65 visible, 21 late of 96 taken' (10 unaccounted): the search counts the rest,
    pending and younger than the SLO, and the report's step table names them."""
    probe = FreshnessProbe(RUN_ID, 20, 0.1)
    probe.late_after = 0.5
    probe.start_window()
    for number in range(4):
        probe.acked(Sample("", number, "WriteLog", time.time()), time.monotonic())
    run = SimpleNamespace(freshness=probe)
    p95, visible, late = probe.window_p95_ms(time.monotonic())
    step = Step(offered_rps=100, batch_size=None, seconds=4.8, achieved_rps=100, offered_logs_per_second=100,
                acked_logs_per_second=100, stored_logs_per_second=100, backlog_start=0, backlog_end=0,
                backlog_rise=0, p50_ms=1, p95_ms=2, p99_ms=3, failure_rate=0.0, failures={}, dropped=0,
                visibility_taken=run.freshness.window_taken, visibility_visible=visible, visibility_late=late,
                visibility_pending=run.freshness.window_taken - visible - late)  # fmt: skip
    (cause,) = _broken(step, CapacitySettings(slo_visibility_p95_ms=500.0))
    assert cause["words"].endswith("(0 visible, 0 late, 4 pending (acknowledged less than 500 ms before the step's "
                                   "end) of 4 taken)"), cause  # fmt: skip
    assert _visibility_samples({**dataclasses.asdict(step), "good": False}) == "0 visible, 0 late, 4 pending of 4 taken"


def test_a_capacity_step_that_made_no_call_blames_nothing_of_the_service():
    """Before the fix, no call meant 'failures 100.0% > 1.0% (mostly no answer)' and a search stopped as if the
    service failed every call."""
    step = Step(offered_rps=50, batch_size=None, seconds=4.8, achieved_rps=0, offered_logs_per_second=50,
                acked_logs_per_second=0, stored_logs_per_second=0, backlog_start=0, backlog_end=0,
                backlog_rise=0, p50_ms=0, p95_ms=0, p99_ms=0, failure_rate=0.0, failures={}, dropped=0)  # fmt: skip
    step.broken_by = broken = _broken(step, CapacitySettings(slo_visibility_p95_ms=500.0))
    assert [cause["status"] for cause in broken] == ["NO_CALLS"], broken
    assert "the service not judged" in broken[0]["words"]
    assert not step.good and not step.every_call_failed, "no call made is not every call failed"


# --- no figure without a sample ------------------------------------------------------------------------------------


def test_no_visibility_figure_is_stated_when_no_sample_became_visible(tmp_path, capsys):
    fed = Samples()
    fed.acked(39)
    fed.probe.finish()  # the audit settled: never visible
    data = fed.figures()
    row = data["aggregated"]
    assert (row["p50"], row["p95"], row["p99"], row["max"], data["max_poll_gap_ms"]) == (None,) * 5
    assert summary_line(data).endswith("0 of 39 samples visible: no figure (p50, p95, p99, max n/a); 39 never "
                                       "visible by the end of the audit")  # fmt: skip
    assert " 0 ms" not in strip_sentence(data) and "none visible" in strip_sentence(data)
    folder = write_run(tmp_path / "r", data)
    lines = (folder / "run_freshness.csv").read_text().splitlines()
    assert lines[-1] == "Aggregated,39,0,39,,,,,100.0,0,,", lines
    code, out, _ = report(capsys, folder, "--no-charts", "--json")
    summary = json.loads(out)["freshness"]
    assert code == 0 and summary["visibility_latency_ms"] == {"p50": None, "p95": None, "p99": None, "max": None}
    assert summary["by_name"]["Aggregated"]["p95"] is None and summary["max_poll_gap_ms"] is None
    text = (folder / "report.md").read_text()
    assert "| Aggregated | 39 | 0 | 39 | 0 | n/a | n/a | n/a | n/a |" in text, text


def test_the_console_line_of_reports_shows_n_a_and_no_error_bound_without_a_visible_sample(tmp_path, capsys):
    fed = Samples()
    fed.acked(39)
    fed.probe.finish()
    code, out, _ = report(capsys, write_run(tmp_path / "r", fed.figures()), "--no-charts")
    line = next(line for line in out.splitlines() if line.startswith("Freshness:"))
    # n/a alone, never "n/a ms" (a new user's report printed "p50 n/a ms")
    assert code == 0 and line.startswith("Freshness: p50 n/a, p95 n/a, max n/a from") and "n/a ms" not in line, line
    assert "none measured, no sample became visible" in line and " 0 ms" not in line, line


def test_metrics_carry_no_visibility_value_without_a_visible_sample():
    fed = Samples()
    fed.acked(5)
    families = {family.name: family for family in SuiteCollector._freshness(SimpleNamespace(freshness=fed.probe))}
    assert families[f"{PREFIX}_visibility_latency_quantile_seconds"].samples == []
    assert families[f"{PREFIX}_freshness_error_bound_seconds"].samples == []
    fed.found([250.0])
    families = {family.name: family for family in SuiteCollector._freshness(SimpleNamespace(freshness=fed.probe))}
    # promtool refused the quantile label on a gauge: the figures are a summary (seen late, once a sample was visible)
    checked = promtool_check(exposition(list(families.values())))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert families[f"{PREFIX}_visibility_latency_quantile_seconds"].type == "summary"
    assert [sample.value for sample in families[f"{PREFIX}_freshness_error_bound_seconds"].samples] == [
        pytest.approx(0.25)
    ]


def test_the_history_shows_no_visibility_p95_for_a_run_without_a_visible_sample(tmp_path, capsys):
    fed = Samples()
    fed.acked(39)
    fed.probe.finish()
    write_run(tmp_path / "runs" / "a", fed.figures())
    assert history_main([str(tmp_path / "runs")]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "| a |" in line)
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[8] == "n/a", row  # the visibility p95 column: no figure, not 0, as the summary and report say


def test_the_history_leaves_the_visibility_cell_empty_for_a_run_that_did_not_measure_freshness(tmp_path, capsys):
    write_run(tmp_path / "runs" / "a", Samples().figures())
    for name in ("run_freshness.csv", "run_freshness.json"):  # --no-freshness writes neither
        (tmp_path / "runs" / "a" / name).unlink()
    assert history_main([str(tmp_path / "runs")]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "| a |" in line)
    assert [cell.strip() for cell in row.strip("|").split("|")][8] == "", row


# --- the poll interval is never stated without the measured error bound -------------------------------------------


def test_the_report_states_the_measured_error_bound_and_the_poll_interval_as_the_shortest_asked_for(tmp_path, capsys):
    fed = Samples()
    fed.found([800.0, 900.0, 1000.0], gap_ms=700.0)
    folder = write_run(tmp_path / "r", fed.figures())
    code, out, _ = report(capsys, folder, "--no-charts")
    line = next(line for line in out.splitlines() if line.startswith("Freshness:"))
    bound = "late by at most 700 ms, the largest gap between the polls that saw a sample, measured (100 ms is only " \
        "the shortest gap asked for between polls)"  # fmt: skip
    assert code == 0 and bound in line and "poll interval 100 ms" not in line, line
    assert bound in (folder / "report.md").read_text()


def test_samples_pending_and_held_back_count_the_same_samples_in_the_json_the_metrics_and_a_masters_figures(
    tmp_path, capsys
):
    """pending counted the held-back learning samples while samples did not (5 samples, 3 pending, 2 visible, and
    /metrics said 4 pending): every count that sits beside ``samples`` counts counted samples; the held ones have
    their own, and ``taken`` is every sample taken."""
    fed = Samples()
    fed.found([200.0, 300.0])
    fed.acked(3)  # counted, pending
    fed.probe.holding = True
    for number in (100, 101):  # held back (learning the store's pace), pending
        sample = Sample("", number, "WriteLog", time.time(), held=True)
        fed.probe.acked(sample, 1000.0)
    data = fed.figures()
    assert (data["samples"], data["visible"], data["pending"], data["held_back"], data["taken"]) == (5, 2, 3, 0, 7)
    gauges = {family.name: family.samples[0].value for family in SuiteCollector._freshness(SimpleNamespace(
        freshness=fed.probe)) if family.name.startswith(f"{PREFIX}_freshness_") and family.samples}  # fmt: skip
    assert (gauges[f"{PREFIX}_freshness_samples"], gauges[f"{PREFIX}_freshness_pending"]) == (5, 3), gauges
    master = FreshnessProbe(RUN_ID, 20, 0.1)
    master.merge_report(fed.probe.take_report(), "w1")
    assert (master.counted_pending(), sum(master.samples.values())) == (3, 5), "a worker reports its counted ones"
    fed.probe.drop_held()
    data = fed.figures()
    assert (data["samples"], data["pending"], data["held_back"], data["taken"]) == (5, 3, 2, 7)
    gauges = {family.name: family.samples[0].value for family in SuiteCollector._freshness(SimpleNamespace(
        freshness=fed.probe)) if family.name.startswith(f"{PREFIX}_freshness_") and family.samples}  # fmt: skip
    assert gauges[f"{PREFIX}_freshness_held_back"] == 2
    code, out, _ = report(capsys, write_run(tmp_path / "r", data), "--no-charts", "--json")
    summary = json.loads(out)["freshness"]
    assert code == 0 and (summary["samples"], summary["held_back"], summary["taken"]) == (5, 2, 7)


def test_the_metrics_help_says_the_poll_interval_is_not_the_error_bound():
    families = {family.name: family for family in SuiteCollector._freshness(SimpleNamespace(freshness=Samples().probe))}
    assert "not the error bound" in families[f"{PREFIX}_freshness_poll_interval_seconds"].documentation


# --- the history's regression check compares visibility ------------------------------------------------------------


def test_a_newest_run_whose_visibility_p95_regressed_fails_the_history_gate(tmp_path, capsys):
    for folder, p95 in (("a", 1000.0), ("b", 1050.0), ("c", 950.0), ("d", 6058.0)):
        fed = Samples()
        fed.found([p95] * 20, gap_ms=300.0)
        write_run(tmp_path / "runs" / folder, fed.figures())
    write_run(tmp_path / "runs" / "b2", {**Samples().figures(), "status": "done"})  # no visible sample: not compared
    assert history_main([str(tmp_path / "runs"), "--max-regression-pct", "50"]) == 1
    err = capsys.readouterr().err
    assert "d: visibility p95 ms 6,058.000 vs median 1,000.000 (+506% worse) (> 50%)" in err, err


def test_a_visibility_change_within_the_measured_error_bound_is_no_regression(tmp_path, capsys):
    for folder, p95 in (("a", 100.0), ("b", 100.0), ("c", 400.0)):
        fed = Samples()
        fed.found([p95] * 20, gap_ms=700.0)  # each figure late by up to 700 ms: 100 -> 400 ms is within it
        write_run(tmp_path / "runs" / folder, fed.figures())
    assert history_main([str(tmp_path / "runs"), "--max-regression-pct", "50"]) == 0, capsys.readouterr().err


# --- python -m reports --json phases have _freshness.json's shape -------------------------------------------------


def test_the_json_summary_phases_have_the_freshness_files_shape(tmp_path, capsys):
    fed = Samples()
    fed.found([100.0, 200.0, 300.0], phase="0")
    fed.found([900.0, 1200.0], phase="1")
    fed.acked(2, phase="1")
    fed.probe.finish(INTERRUPTED)
    data = fed.figures()
    code, out, _ = report(capsys, write_run(tmp_path / "r", data), "--no-charts", "--json")
    phases = json.loads(out)["freshness"]["phases"]
    written = json.loads((tmp_path / "r" / "run_freshness.json").read_text())["phases"]
    assert code == 0 and phases == written == data["phases"]
    assert set(phases[1]) == {
        "phase",
        "samples",
        "visible",
        "never_visible",
        "unknown",
        "p50",
        "p95",
        "p99",
        "max",
        "max_poll_gap_ms",
        "no_sample_because",
    }
    assert (phases[1]["unknown"], phases[1]["visible"], phases[1]["p99"]) == (2, 2, 1200.0)


def test_a_phase_that_ran_without_a_sample_has_its_row_saying_why_everywhere(tmp_path, capsys, caplog):
    """``--action 6s:true``, 12 s at the default share: the one window opened after the action, and phase 0, which
    ran for 6 s and had 600 logs acknowledged, had no row in _freshness.csv, _freshness.json, the console, the
    report or --json. Its row now says it has no sample and why, its figures n/a, never 0."""
    fed = Samples()
    fed.found([900.0, 1200.0], phase="1")
    fed.probe.sampling_limited = True  # the query share took fewer samples than the rate asked for
    fed.probe.close()  # looking done: finish_probe makes no last sweep
    phases = PhaseCounts(current=1)
    phases.by_phase.update({0: PhaseLogs(sent=600, acked=600), 1: PhaseLogs(sent=610, acked=610)})
    run = SimpleNamespace(settings=SimpleNamespace(actions=SimpleNamespace(actions=[object()]),
                                                   freshness_sample_rate=20.0),
                          phases=phases, audit_interrupted_by="", started_at=0.0, stopped_at=0.0,
                          workers_without_final_counts=[])  # fmt: skip
    (tmp_path / "r").mkdir()
    data = finish_probe(None, run, fed.probe, str(tmp_path / "r" / "run"), verdict(RUN_ID, 1210, 0, 1210, 1.0, True))
    because = "--freshness-query-share 1.5% paid for no sampling window while it ran"
    assert [(row["phase"], row["samples"], row["p95"], row["no_sample_because"]) for row in data["phases"]] == [
        (0, 0, None, because), (1, 2, 1200.0, "")]  # fmt: skip
    assert json.loads((tmp_path / "r" / "run_freshness.json").read_text())["phases"] == data["phases"]
    with open(tmp_path / "r" / "run_freshness.csv", newline="") as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    assert (rows["phase 0"]["Samples"], rows["phase 0"]["95%"], rows["phase 0"]["No Sample Because"]) == (
        "0",
        "",
        because,
    )
    with caplog.at_level(logging.INFO, logger="locust.stats_logger"):
        print_freshness_summary(data)
    table = [record.getMessage() for record in caplog.records]
    assert ["phase", "0", "0", "0", "0", "0", "n/a", "n/a", "n/a", "n/a"] in [line.split() for line in table]
    assert f"  phase 0: no sample, no figure: {because}" in table
    write_run(tmp_path / "report", data)
    code, out, _ = report(capsys, tmp_path / "report", "--no-charts", "--json")
    assert code == 0 and json.loads(out)["freshness"]["phases"] == data["phases"]
    report(capsys, tmp_path / "report", "--no-charts")
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "| phase 0 | 0 | 0 | 0 | 0 | n/a | n/a | n/a | n/a | n/a |" in markdown
    assert f"phase 0: no sample, no figure: {because}." in markdown


def test_the_console_table_at_the_end_of_a_run_shows_n_a_without_a_visible_sample(caplog):
    fed = Samples()
    fed.acked(3)
    fed.probe.finish()
    with caplog.at_level(logging.INFO, logger="locust.stats_logger"):
        print_freshness_summary(fed.figures())
    table = [record.getMessage() for record in caplog.records]
    assert table[2].split() == ["WriteLog", "3", "0", "3", "0", "n/a", "n/a", "n/a", "n/a"], table


def test_the_visibility_gate_counts_the_samples_never_visible_as_later_than_any(tmp_path, capsys):
    fed = Samples()
    fed.found([10.0 * n for n in range(1, 97)])  # 10..960 ms: 95% of these 96 are within 912 ms
    fed.acked(4)
    fed.probe.finish()  # 4 of 100 never visible: the p95 of all 100 is the visible ones' value at 98.96%
    folder = write_run(tmp_path / "r", fed.figures())
    code, _, err = report(capsys, folder, "--no-charts", "--max-visibility-p95-ms", "930")
    assert code == 1 and "(4 of 100 samples never visible, counted as later than any) 950" in err, err


def test_a_run_written_with_zeros_for_no_visible_sample_reads_as_no_figure(tmp_path, capsys):
    """Runs written before the writers left the cells empty held 0 ms there: a reader shows no figure either."""
    fed = Samples()
    fed.acked(39)
    fed.probe.finish()
    folder = write_run(tmp_path / "runs" / "a", {**fed.figures(), "max_poll_gap_ms": 0.0})
    header = (folder / "run_freshness.csv").read_text().splitlines()[0]
    zeros = "0.0,0.0,0.0,0.0,100.0,0,0.0"
    (folder / "run_freshness.csv").write_text(f"{header}\nWriteLog,39,0,39,{zeros}\nAggregated,39,0,39,{zeros}\n")
    code, out, _ = report(capsys, folder, "--no-charts", "--json")
    summary = json.loads(out)["freshness"]
    assert code == 0 and set(summary["visibility_latency_ms"].values()) == {None} and summary["max_poll_gap_ms"] is None
    assert history_main([str(tmp_path / "runs")]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "| a |" in line)
    assert [cell.strip() for cell in row.strip("|").split("|")][8] == "n/a", row


def test_the_poll_interval_is_stated_in_plain_milliseconds_however_long():
    """``--freshness-poll-interval 100000`` printed ``polls at least 1e+08 ms apart``."""
    fed = Samples()
    fed.found([800.0], gap_ms=700.0)
    data = fed.figures()
    data["poll_interval_ms"] = 100_000_000.0
    assert "polls at least 100,000,000 ms apart" in error_bound(data), error_bound(data)


# --- each row of _freshness.csv carries its own error bound ---------------------------------------------------------


def test_each_freshness_csv_row_carries_its_own_largest_poll_gap_not_the_runs(tmp_path, capsys):
    """The phase rows (and the per-RPC ones) repeated the run-wide largest poll gap: a quiet phase polled 100 ms
    apart read as late by the 700 ms of a deploy's phase."""
    fed = Samples()
    fed.found([300.0, 400.0], gap_ms=100.0, phase="0", name="BatchWriteLog")
    fed.found([900.0], gap_ms=700.0, phase="1")
    fed.acked(1, phase="2")  # a phase with no visible sample: no bound, an empty cell
    fed.probe.finish()
    code, out, _ = report(capsys, write_run(tmp_path / "r", fed.figures()), "--no-charts", "--json")
    with open(tmp_path / "r" / "run_freshness.csv", newline="") as handle:
        gaps = {row["Name"]: row["Largest Poll Gap (ms)"] for row in csv.DictReader(handle)}
    assert gaps == {"BatchWriteLog": "100.0", "WriteLog": "700.0", "Aggregated": "700.0", "phase 0": "100.0",
                    "phase 1": "700.0", "phase 2": ""}  # fmt: skip
    summary = json.loads(out)["freshness"]
    assert code == 0 and [row["max_poll_gap_ms"] for row in summary["phases"]] == [100.0, 700.0, None]
    report(capsys, tmp_path / "r", "--no-charts")
    assert "| phase 0 | 2 | 2 | 0 | 0 | 300.031 | 400 | 400 | 400 | 100 |" in (tmp_path / "r" / "report.md").read_text()


def test_a_masters_rows_keep_the_largest_poll_gap_each_worker_measured_for_them():
    workers = [Samples(), Samples()]
    workers[0].found([300.0], gap_ms=100.0, phase="0")
    workers[1].found([300.0], gap_ms=250.0, phase="0", name="BatchWriteLog")
    workers[1].found([300.0], gap_ms=50.0, phase="1")
    master = FreshnessProbe(RUN_ID, 20, 0.1)
    for index, worker in enumerate(workers):
        master.merge_report(worker.probe.take_report(), f"w{index}")
    data = figures(master, 20, "done")
    assert [row["max_poll_gap_ms"] for row in data["phases"]] == [250.0, 50.0]
    assert {name: row["max_poll_gap_ms"] for name, row in data["by_name"].items()} == {
        "BatchWriteLog": 250.0,
        "WriteLog": 100.0,
    }
    assert data["aggregated"]["max_poll_gap_ms"] == data["max_poll_gap_ms"] == 250.0


def test_a_bound_wider_than_the_poll_interval_asked_names_the_query_share_and_what_to_raise(tmp_path, capsys):
    """``--freshness-poll-interval 0.02`` at 100 calls/s and the default share: the line said "polls at least 20 ms
    apart" beside a bound of 377 ms and blamed the share for the number of samples only, never for the bound."""
    probe = FreshnessProbe(RUN_ID, 20, 0.02)
    probe.record("WriteLog", 900.0, time.time())
    probe.samples["WriteLog"], probe.asked, probe.max_poll_gap, probe.sampling_limited = 111, 602.0, 0.377, True
    line = summary_line(figures(probe, 20))
    assert "late by at most 377 ms" in line and "sampled 111 of 602 asked: limited by --freshness-query-share" in line
    assert (
        "; --freshness-query-share 1.5% paid for no polls 20 ms apart (50 queries a second while a sample is "
        "pending): raise it for a bound nearer 20 ms, or raise --freshness-poll-interval"
    ) in line, line
    code, out, _ = report(capsys, write_run(tmp_path / "r", figures(probe, 20)), "--no-charts")
    said = "; --freshness-query-share paid for no polls 20 ms apart: raise it for a bound nearer the interval"
    assert code == 0 and "sampled 111 of 602 asked: limited by --freshness-query-share 1.5%" in out and said in out
    probe.max_poll_gap = 0.03  # within reach of the interval asked for: nothing more to say
    assert "paid for no polls" not in summary_line(figures(probe, 20))
    probe.max_poll_gap, probe.sampling_limited = 0.377, False  # not the share's doing (a busy client, the SLO's polls)
    assert "paid for no polls" not in summary_line(figures(probe, 20))


def said_everywhere(tmp_path, capsys, data: dict, words: str, unsaid: str) -> dict:
    """Checks that the console line and the report say ``words`` and not ``unsaid``; returns ``reports --json``'s
    freshness section."""
    line = summary_line(data)
    assert words in line and unsaid not in line, line
    folder = write_run(tmp_path / "r", data)
    code, out, _ = report(capsys, folder, "--no-charts")
    assert code == 0 and words in out and unsaid not in out, out
    code, out, _ = report(capsys, folder, "--no-charts", "--json")
    assert code == 0, out
    return json.loads(out)["freshness"]


def test_samples_held_back_are_named_in_the_console_line_the_report_and_reports_json(tmp_path, capsys):
    """Samples taken to learn the store's pace (or in a coarser window a finer one replaced) are never counted: the
    console line, the report's bound and ``reports --json`` say how many (``--json`` had no ``held_back``)."""
    probe = FreshnessProbe(RUN_ID, 20, 0.1)
    probe.record("WriteLog", 900.0, time.time())
    probe.samples["WriteLog"], probe.asked, probe.max_poll_gap, probe.sampling_limited = 41, 600.0, 0.113, True
    probe.held_back = 4
    held = "(and 4 taken to learn the store's pace or in a coarser window, not counted)"
    assert held in summary_line(figures(probe, 20))
    folder = write_run(tmp_path / "r", figures(probe, 20))
    code, out, _ = report(capsys, folder, "--no-charts", "--json")
    assert code == 0 and json.loads(out)["freshness"]["held_back"] == 4, out
    code, out, _ = report(capsys, folder, "--no-charts")
    assert code == 0 and held in out, out


def test_the_report_and_reports_json_say_why_fewer_samples_were_counted_as_the_console_does(tmp_path, capsys):
    """Fewer samples than asked without the share's limit (the probe's first seconds, calls that did not come): the
    console said so and why, the report said nothing (it followed ``sampling_limited`` only), and ``--json`` had no
    ``asked_unsampled``."""
    probe = FreshnessProbe(RUN_ID, 20, 0.1)
    probe.record("WriteLog", 900.0, time.time())
    probe.samples["WriteLog"], probe.asked, probe.max_poll_gap, probe.sampling_limited = 85, 101.0, 0.113, False
    probe.asked_unsampled = 14
    data = figures(probe, 20)
    clause = "; sampled 85 of 101 asked: 14 fell due while the probe did not sample (its first seconds: "
    assert said_everywhere(tmp_path, capsys, data, clause, "limited by")["asked_unsampled"] == 14


def test_the_samples_said_to_have_fallen_due_unsampled_are_never_more_than_those_missing() -> None:
    """At 1,284 calls/s the line said 'sampled 389 of 401 asked: 13 fell due while the probe did not sample' (each
    count rounded apart; a window's first sample is taken at once): 402 of 401. The words name the 12 missing."""
    data = {"samples": 389, "taken": 389, "asked": 401, "asked_unsampled": 13, "sampling_limited": False}
    assert sampled(data).startswith("; sampled 389 of 401 asked: 12 fell due while the probe did not sample (its ")
    data.update(asked=402)
    assert sampled(data).startswith("; sampled 389 of 402 asked: 13 fell due while the probe did not sample (its ")


def test_sampling_stopped_for_the_reserve_is_said_so_by_the_console_the_report_and_reports_json(tmp_path, capsys):
    """Issue 25: sampling at the whole rate stopped to keep the share's rest for the polls after the stop, and every
    output said 'limited by --freshness-query-share', as when the share paid for no sampling."""
    probe = FreshnessProbe(RUN_ID, 20, 0.1)
    probe.record("WriteLog", 900.0, time.time())
    probe.samples["WriteLog"], probe.asked, probe.max_poll_gap, probe.sampling_reserved_at = 83, 100.0, 0.113, 4.98
    data = figures(probe, 20)
    clause = (
        "; sampled 83 of 100 asked: sampling stopped 5.0 s into the test to keep the rest of "
        "--freshness-query-share 1.5% for following the samples taken until they are visible after the stop"
    )
    fresh = said_everywhere(tmp_path, capsys, data, clause, "limited by")
    assert fresh["sampling_reserved_at_s"] == 5.0 and not fresh["sampling_limited"], fresh


def test_a_coarse_window_s_figure_is_marked_so_by_the_console_the_report_and_reports_json(tmp_path, capsys):
    """Issue 25: a test stopped before the share paid for a window at the poll interval counts the learning's flush
    cycle, polled up to 1.5 s apart: its figure (p50 2,419 ms against a truth of 1,000) read as the answer."""
    probe = FreshnessProbe(RUN_ID, 20, 0.1)
    probe.record("WriteLog", 2419.0, time.time())
    probe.samples["WriteLog"], probe.asked, probe.max_poll_gap, probe.sampling_limited = 40, 402.0, 1.501, True
    probe.held_released, probe.flush_cycle, probe.precise_window_at = True, 1.998, 30.34
    data = figures(probe, 20)
    words = ("a coarse figure: the test stopped before --freshness-query-share 1.5% paid for a sampling window at the "
             "poll interval (at its call rate, about 30 s into the test), so these are the samples of one flush cycle "
             "(1,998 ms) taken to learn the store's pace, polled up to 1,501 ms apart")  # fmt: skip
    fresh = said_everywhere(tmp_path, capsys, data, words, "paid for no polls")
    assert (fresh["held_released"], fresh["flush_cycle_ms"], fresh["precise_window_at_s"]) == (True, 1998, 30.3), fresh


def test_beyond_five_percent_never_visible_the_gate_says_so_not_inf_ms(tmp_path, capsys):
    """A new user's report printed ``visibility latency p95 (...) inf ms > --max-visibility-p95-ms ...``."""
    fed = Samples()
    fed.found([10.0 * n for n in range(1, 91)])
    fed.acked(10)
    fed.probe.finish()  # 10 of 100 never visible: more than 5%
    folder = write_run(tmp_path / "some", fed.figures())
    code, _, err = report(capsys, folder, "--no-charts", "--max-visibility-p95-ms", "930")
    assert code == 1 and "inf" not in err, err
    assert ("visibility latency p95 later than any figure: 10 of 100 samples never visible, more than 5% > "
            "--max-visibility-p95-ms 930") in err, err  # fmt: skip


def test_the_reports_per_rpc_freshness_table_counts_the_unknown_samples(tmp_path, capsys):
    """The console table and the phase table had an "unknown" column, the report's per-RPC table did not: its 7
    samples read as 5 visible and none never visible, 2 unsaid."""
    fed = Samples()
    fed.found([100.0 + 10 * n for n in range(5)])
    fed.acked(2)
    fed.probe.finish(INTERRUPTED)
    folder = write_run(tmp_path / "r", fed.figures())
    code, out, _ = report(capsys, folder, "--no-charts")
    assert code == 0, out
    lines = (folder / "report.md").read_text().splitlines()
    header = next(line for line in lines if line.startswith("| RPC | samples"))
    row = next(line for line in lines[lines.index(header) :] if line.startswith("| WriteLog"))
    cells = dict(
        zip([cell.strip() for cell in header.split("|")], [cell.strip() for cell in row.split("|")], strict=True)
    )
    assert (cells["samples"], cells["visible"], cells["never visible"], cells["unknown"]) == ("7", "5", "0", "2")


def test_a_service_that_stopped_acknowledging_is_named_as_the_cause_not_a_test_stopped_early(tmp_path, capsys):
    """The service killed mid-run: the line said "a coarse figure: the test stopped before --freshness-query-share
    1.5% paid…" and counted the samples of the failing calls as "fell due while no call came to take them". Now it
    says the sampled calls failed from when, the last acknowledged when, and with what."""
    probe = FreshnessProbe(RUN_ID, 20, 0.1)
    probe.holding = True  # the store-learning's samples, released at the end as no finer window counted any
    started = time.monotonic()
    for number in range(3):
        probe.acked(Sample("", number, "WriteLog", time.time(), held=True), started + 1.0)
    answer = pb.QueryLogResponse(success=True, logs=[pb.LogEntry(metadata={PROBE_KEY: RUN_ID, SAMPLE_KEY: str(n)})
                                                     for n in range(3)])  # fmt: skip
    assert probe.observe(probe.look(started + 1.5), answer.SerializeToString(), started + 1.5) == 3
    for _ in range(5):  # the service killed: the sampled calls fail
        probe.not_acknowledged(time.monotonic() + 3.0, "UNAVAILABLE")
    probe.asked, probe.max_poll_gap = 20.0, 0.5
    probe.finish()
    data = figures(probe, 20, "done")
    assert data["held_released"] and data["unacknowledged"] == 5 and data["failing_status"] == "UNAVAILABLE", data
    assert 1.0 <= data["last_acked_s"] < data["failing_since_s"], data
    words = (f"a coarse figure: the service stopped acknowledging calls (they failed from "
             f"{data['failing_since_s']:,.1f} s into the test to its end, UNAVAILABLE), before "
             "--freshness-query-share 1.5% paid for a sampling window at the poll interval")  # fmt: skip
    fresh = said_everywhere(tmp_path, capsys, data, words, "the test stopped before")
    assert "5 fell on calls the service did not acknowledge (none from " in summary_line(data)
    assert "12 fell due while no call came" in summary_line(data), "20 asked: 3 taken, 5 on failed calls, 12 not"
    assert (fresh["unacknowledged"], fresh["failing_status"]) == (5, "UNAVAILABLE"), fresh


def test_a_sampled_call_acknowledged_again_ends_the_failing_and_a_master_adds_its_workers():
    """A failure in the middle of a run names no cause at its end; a master counts its workers' failed samples and
    says the service failed only when every worker says so."""
    probe = FreshnessProbe(RUN_ID, 20, 0.1, worker="w1")
    probe.not_acknowledged(time.monotonic(), "DEADLINE_EXCEEDED")
    probe.acked(Sample("w1", 0, "WriteLog", time.time()), time.monotonic())
    assert probe.failing_since is None and probe.unacknowledged == 1
    master, other = FreshnessProbe(RUN_ID, 20, 0.1), FreshnessProbe(RUN_ID, 20, 0.1, worker="w2")
    other.not_acknowledged(time.monotonic(), "UNAVAILABLE")
    master.merge_report(probe.take_report(), "w1")
    master.merge_report(other.take_report(), "w2")
    assert master.unacknowledged == 2 and master.failing_since is None, "w1's latest sampled call was acknowledged"
    other.not_acknowledged(time.monotonic(), "UNAVAILABLE")
    probe.not_acknowledged(time.monotonic(), "UNAVAILABLE")
    master.merge_report(probe.take_report(), "w1")
    master.merge_report(other.take_report(), "w2")
    assert master.unacknowledged == 4 and master.failing_since is not None and master.failing_status == "UNAVAILABLE"


def test_figures_of_a_slow_store_that_end_well_before_the_test_say_which_part_they_cover_and_fail_the_gate(
    tmp_path, capsys
):
    """Issue 25: a new user's figure covered samples acknowledged 2 to 14 s into a 30 s test at --store-rate 40 (p95
    19,694 ms; the last logs took ~45 s) and nothing said so: ``reports --max-visibility-p95-ms 25000`` passed it.
    Now the console line, the report and ``reports --json`` say which part of the run the figures cover, and the gate
    is breached, saying why; figures that reach the run's last seconds, or a store learnt to keep up, say nothing."""
    probe = FreshnessProbe(RUN_ID, 20, 0.1)
    probe.record("WriteLog", 19_694.0, time.time())
    probe.samples["WriteLog"], probe.asked, probe.max_poll_gap = 132, 132.0, 2.5
    probe.acked_first, probe.acked_last = 1_000_002.2, 1_000_014.0  # epoch s; the test ran 1,000,000 to 1,000,030
    data = figures(probe, 20, "done", test_span=(1_000_000.0, 1_000_030.0))
    assert (data["acked_from_s"], data["acked_to_s"], data["test_s"]) == (2.2, 14.0, 30.0), data
    words = ("the figures cover samples acknowledged 2-14 s into a 30 s test: visibility later in the run was not "
             "measured")  # fmt: skip
    fresh = said_everywhere(tmp_path, capsys, data, words, "limited by")
    assert (fresh["acked_from_s"], fresh["acked_to_s"], fresh["test_s"]) == (2.2, 14.0, 30.0), fresh
    code, out, err = report(capsys, write_run(tmp_path / "gated", data), "--no-charts",
                            "--max-visibility-p95-ms", "25000")  # fmt: skip
    assert code == 1 and "gate passed" not in out, out
    assert ("gate breached: visibility latency p95 19,694 ms <= --max-visibility-p95-ms 25000, but "
            f"{words}: not a figure of the whole run") in err, err  # fmt: skip
    for acked_last, cycle in ((1_000_028.5, 0.0), (1_000_014.0, 2.0)):  # to the last seconds; a store that keeps up
        probe.acked_last, probe.flush_cycle = acked_last, cycle
        assert "the figures cover" not in summary_line(figures(probe, 20, "done", test_span=(1e6, 1_000_030.0)))


@pytest.mark.parametrize(
    ("acked_from", "acked_to", "when"),
    [(10.4, 29.1, "earlier"), (10.4, 14.0, "earlier and later")],
)  # fmt: skip
def test_figures_of_a_slow_store_that_start_well_after_the_test_did_say_so_and_fail_the_gate(
    tmp_path, capsys, acked_from, acked_to, when
):
    """Issue 25: --store-rate 60 of 100 calls/s (--arrival-rate 100, 30 s): the figures covered acknowledgements
    from ~10 s into the run only, and nothing said so: the coverage words checked the end alone. A late start is said
    as an early end is, at the same threshold (beyond the probe's first 2 s, when it samples nothing by design), by
    the console line, the report, reports --json and the web UI's strip, and the gate is breached saying why."""
    probe = FreshnessProbe(RUN_ID, 20, 0.1)
    probe.record("WriteLog", 9_270.0, time.time())
    probe.samples["WriteLog"], probe.asked, probe.max_poll_gap = 80, 80.0, 1.8
    probe.acked_first, probe.acked_last = 1_000_000.0 + acked_from, 1_000_000.0 + acked_to
    data = figures(probe, 20, "done", test_span=(1_000_000.0, 1_000_030.0))
    words = (f"the figures cover samples acknowledged 10-{acked_to:,.0f} s into a 30 s test: visibility {when} in the "
             "run was not measured")  # fmt: skip
    fresh = said_everywhere(tmp_path, capsys, data, words, "limited by")
    assert fresh["coverage"] == words, fresh
    assert words in strip_sentence(data)
    code, out, err = report(capsys, write_run(tmp_path / "gated", data), "--no-charts",
                            "--max-visibility-p95-ms", "25000")  # fmt: skip
    assert code == 1 and f"but {words}: not a figure of the whole run" in err, err
    for start in (2.0, 6.0):  # from the probe's first possible sample (2 s), or within the threshold (4 s) of it
        probe.acked_first = 1_000_000.0 + start
        probe.acked_last = 1_000_029.1
        assert "the figures cover" not in summary_line(figures(probe, 20, "done", test_span=(1e6, 1_000_030.0)))


def test_a_worker_lost_mid_run_is_named_with_the_samples_and_asked_it_takes_with_it(tmp_path, capsys):
    """--processes 2, one worker SIGKILLed at 12 s of 25: the line said 'sampled 20 of 329 asked' where ~500 were
    asked at 20/s, and only the audit named the dead worker. Its samples still pending and what was asked of it after
    its last report are now said to be missing, in the console line, the report and reports --json."""
    master = FreshnessProbe(RUN_ID, 20, 0.1)
    for worker, pending in (("vm_alive", 0), ("vm_dead", 3)):
        probe = FreshnessProbe(RUN_ID, 20, 0.1, worker=worker)
        for number in range(pending + 2):
            probe.acked(Sample(worker, number, "WriteLog", time.time()), time.monotonic())
        probe.asked = probe._unreported_asked = 120.0
        for number in range(2):  # found 0.3 s after their acknowledgement
            probe.pending.pop((worker, number))
            probe.record("WriteLog", 300.0, time.time())
        master.merge_report(probe.take_report(), worker)
    master.max_poll_gap = 0.1
    master.finish()
    master.lose(["vm_dead"])
    data = figures(master, 20, "done")
    assert (data["samples"], data["visible"], data["pending"], data["lost_pending"]) == (7, 4, 3, 3), data
    # its last report came as soon as the test started: 0.0 s, or 0.1 s on a busy machine (a fresh-clone CI run)
    last = data["lost_workers"][0]["last_report_s"]
    words = (f"1 worker lost before its final report (vm_dead, its last report {last:.1f} s into the test): the 3 "
             "samples it still looked for stay pending, never found, and what the sample rate asked of it after its "
             "last report is not in 'asked'")  # fmt: skip
    fresh = said_everywhere(tmp_path, capsys, data, words, "2 workers lost")
    assert fresh["lost_workers"] == [{"worker": "vm_dead", "last_report_s": last}] and fresh["lost_pending"] == 3
    assert 0.0 <= last <= 1.0, last


@pytest.mark.parametrize(
    ("lateness_s", "slowest_ms", "why"),
    [
        (0.110, 300.0, "a poll waits for the one before it to return (the slowest QueryLog took 21 ms), and for the "
                       "Locust process's event loop when it is busy (a poll started up to 110 ms after due)"),
        (0.009, 1500.0, "a sample not visible within its window is looked for a tenth of its age apart (the slowest "
                        "found after 1,500 ms)"),
    ],
)  # fmt: skip
def test_polls_well_beyond_the_poll_interval_say_why_without_an_slo(tmp_path, capsys, lateness_s, slowest_ms, why):
    """--freshness-poll-interval 0.01 --freshness-query-share 100: bound 122 ms and no reason given (only a freshness
    SLO's line explained its gap). The reason measured is given in the console line and the report."""
    probe = FreshnessProbe(RUN_ID, 20, 0.01, query_share=100.0)
    probe.record("WriteLog", 100.0, time.time())
    probe.record("WriteLog", slowest_ms, time.time())
    probe.samples["WriteLog"], probe.asked, probe.max_poll_gap, probe.queries = 2, 2.0, 0.122, 50
    probe.slowest_query, probe.poll_lateness = 0.021, lateness_s
    data = figures(probe, 20, "done")
    said_everywhere(tmp_path, capsys, data, f"they came up to 122 ms apart: {why}", "paid for no polls")


def test_polls_near_the_poll_interval_need_no_reason_and_an_unexplained_gap_gets_none():
    probe = FreshnessProbe(RUN_ID, 20, 0.1)
    probe.record("WriteLog", 300.0, time.time())
    probe.samples["WriteLog"], probe.asked, probe.max_poll_gap, probe.queries = 1, 1.0, 0.15, 5
    assert "they came up to" not in summary_line(figures(probe, 20, "done")), "within twice the poll interval"
    probe.max_poll_gap, probe.poll_lateness = 0.9, 0.01  # neither a late start nor a slow sample explains 900 ms
    assert "they came up to" not in summary_line(figures(probe, 20, "done"))


def test_at_its_maximum_the_query_share_is_never_said_to_be_raised_what_limited_the_probe_is(tmp_path, capsys):
    """Issue 25: --freshness-query-share 100 (its maximum) at 5 calls/s, --freshness-poll-interval 0.02, 10 s: the
    line said 'limited by --freshness-query-share 100%' and '--freshness-query-share 100% paid for no polls 20 ms
    apart (...): raise it for a bound nearer 20 ms'. At the maximum the probe's queries are at most its calls: the
    call rate limited it, and every output says so and what to raise instead; no output says to raise the share."""
    probe = FreshnessProbe(RUN_ID, 20, 0.02, query_share=100.0)
    probe.record("WriteLog", 1_034.0, time.time())
    probe.samples["WriteLog"], probe.asked, probe.max_poll_gap, probe.sampling_limited = 9, 209.0, 0.112, True
    data = figures(probe, 20, "done")
    limited = ("limited by the call rate: at --freshness-query-share 100%, its maximum, the probe's queries are at "
               "most its calls, too few for a poll every 20 ms all the time; raise --freshness-poll-interval to "
               "sample more")  # fmt: skip
    said_everywhere(tmp_path, capsys, data, limited, "raise it")
    assert (
        "; the call rate paid for no polls 20 ms apart (50 queries a second while a sample is pending) at "
        "--freshness-query-share 100%, its maximum: raise --freshness-poll-interval"
    ) in summary_line(data)
    code, out, _ = report(capsys, write_run(tmp_path / "again", data), "--no-charts")
    assert code == 0 and ("; the call rate paid for no polls 20 ms apart at --freshness-query-share 100%, its "
                          "maximum: raise --freshness-poll-interval") in out, out  # fmt: skip
    probe.held_released, probe.flush_cycle, probe.precise_window_at = True, 1.998, 30.0  # a coarse figure
    assert "; run longer for figures within about 20 ms" in summary_line(figures(probe, 20, "done"))
    probe.held_released, probe.sampling_limited, probe.sampling_reserved_at = False, False, 5.0  # the reserve
    assert "(visibility grew with the store's backlog)" in summary_line(figures(probe, 20, "done"))
    probe._too_coarse(Sample("", 99, "WriteLog", time.time()), 5.0, share_spent=True)
    assert "--freshness-query-share 100% was spent before they were visible (its maximum)" in probe.unknown_because
    for share in (100.0, 1.5):  # below its maximum, raising the share is still the advice
        probe.query_share = share
        said = [summary_line(figures(probe, 20, "done"))]
        probe.held_released, probe.sampling_reserved_at = True, None
        said.append(summary_line(figures(probe, 20, "done")))
        probe.held_released, probe.sampling_reserved_at = False, 5.0
        assert any("raise the share" in line for line in said) is (share < 100), said
