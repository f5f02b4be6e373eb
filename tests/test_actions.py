"""``--action AT:COMMAND``: commands at set times of a real Locust run, the phases they open, and what each cost."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from audit_barriers import stored_barriers, without_barriers
from conftest import grpc_host
from locust_runs import LOCUST, PACED, ROOT, distributed_args, free_port, run_locust
from web_runs import template_args, wait_for_page, web_ui_process

from reference_server.process import PID_VARIABLE, STATS_FILE_VARIABLE
from reports.cli import main as report

# Real Locust runs or processes of several seconds each: make test runs them, make test-fast does not.
pytestmark = pytest.mark.slow

RESTART = f"{shlex.quote(sys.executable)} -m reference_server.restart"
# Storage slower than the load: a backlog stays queued, as behind the real service's MongoDB under load, and a stop
# that drops the queue loses all but the batch being built (10). 40 logs/s stored of 120 offered: at the restart (2 s
# in) a loaded machine's generator, which made fewer than 100 calls/s, still leaves a backlog (100 logs/s stored of
# 200 offered at 1 s left none then).
BACKLOG = ("--flush-batch", "10", "--flush-period", "1", "--store-rate", "40")


def server_env(server) -> dict[str, str]:
    """What reference_server.around exports, so that the restart action finds the server."""
    return {**os.environ, PID_VARIABLE: str(server.pid), STATS_FILE_VARIABLE: str(server.stats_file)}


def phases_by_number(audit: dict) -> dict[int, dict]:
    return {phase["phase"]: phase for phase in audit["phases"]}


@pytest.mark.parametrize("on_stop", ["drop-queue", "flush"])
def test_a_restart_under_load_is_audited_per_phase_exactly_as_the_server_counted(serve, tmp_path, capsys, on_stop):
    server = serve("--on-stop", on_stop, "--count-by", "phase", *BACKLOG)
    run = run_locust("single", grpc_host(server), tmp_path, "--action", f"2s:{RESTART}", "--target-rps", "120",
                     "--audit-timeout", "60", "--audit-settle", "3", users=4, run_time="4s",
                     env=server_env(server))  # fmt: skip
    audit = run.json("audit")
    barriers = stored_barriers(server.target, audit["run_id"])
    stats = without_barriers(server.stop(), audit, barriers)
    assert stats["restarts"] == 1
    phases = phases_by_number(audit)
    assert sorted(phases) == [0, 1] and phases[1]["action"] == RESTART
    assert sum(phase["acked"] for phase in phases.values()) == audit["acked"]
    assert sum(phase["persisted"] for phase in phases.values()) == audit["persisted"] == stats["stored"]
    assert audit["acked"] <= stats["acked"] <= audit["acked"] + audit["in_doubt"]
    lost_min = sum(phase["lost_min"] for phase in phases.values())
    lost_max = sum(phase["lost_max"] for phase in phases.values())
    assert lost_min <= stats["dropped_on_stop"] <= lost_max
    counted = stats["by_metadata"]  # the server's own counts per phase (--count-by phase)
    for number, phase in phases.items():
        key = str(number)
        assert phase["persisted"] == counted.get("stored", {}).get(key, 0), (number, phase, counted)
        assert phase["acked"] <= counted["acked"].get(key, 0) <= phase["acked"] + phase["in_doubt"]
        dropped = counted.get("dropped_on_stop", {}).get(key, 0)
        assert phase["lost_min"] <= dropped <= phase["lost_max"], (number, phase, counted)
    actions = run.rows("actions")
    assert [(row["Phase"], row["Status"], row["Exit Code"]) for row in actions] == [("1", "ok", "0")]
    if on_stop == "drop-queue":
        assert run.returncode == 3, run.stderr
        assert stats["dropped_on_stop"] > 0 and phases[1]["status"] == "lost"
        lost, acked = phases[1]["lost_min"], phases[1]["acked"]
        verdict = f'after "{RESTART}" at 2 s: {lost:,} of {acked:,} acknowledged logs lost'
        assert verdict in run.stderr
        assert report([run.prefix, "--no-charts"]) == 0, capsys.readouterr().err
        markdown = Path(run.prefix).with_name("report.md").read_text()
        assert "## Actions" in markdown and verdict in markdown
        assert f"| 1 | {RESTART} | {phases[1]['acked']:,} |" in markdown, "the per-phase audit table"
        assert "| action | disrupted | time to recover s | failed calls | worst p99 ms |" in markdown
    else:
        assert stats["dropped_on_stop"] == 0 and stats["stored"] == stats["acked"]
        # A call broken by the restart is in doubt (the server may never have queued it): never acknowledged and lost.
        assert all(phase["lost_min"] == 0 for phase in phases.values()), audit
        assert audit["status"] in ("ok", "in_doubt") and run.returncode in (0, 1), run.stderr  # 1: refused calls


def test_a_failing_action_is_reported_and_the_test_goes_on(serve, tmp_path):
    server = serve()
    run = run_locust("single", grpc_host(server), tmp_path, "--action", "1s:echo broken >&2; exit 7", *PACED, users=2,
                     run_time="3s")  # fmt: skip
    assert run.returncode == 0, run.stderr
    (action,) = run.rows("actions")
    assert (action["Status"], action["Exit Code"], action["Output"]) == ("failed", "7", "broken")
    assert 'action 1 "echo broken >&2; exit 7" at 1 s: FAILED with exit code 7' in run.stderr
    assert float(run.json("run")["duration_seconds"]) >= 2.5
    phases = phases_by_number(run.json("audit"))
    assert phases[0]["acked"] > 0 and phases[1]["acked"] > 0 and run.json("audit")["status"] == "ok"


def test_with_action_failure_stop_a_failing_action_ends_the_test_with_exit_code_1(serve, tmp_path):
    server = serve()
    run = run_locust("single", grpc_host(server), tmp_path, "--action", "1s:exit 7", "--action-failure", "stop",
                     *PACED, users=2, run_time="60s")  # fmt: skip
    assert run.returncode == 1, run.stderr
    assert "--action-failure stop: action 1 failed, stopping the test" in run.stderr
    assert float(run.json("run")["duration_seconds"]) < 20


def test_a_hanging_action_is_killed_after_its_timeout_and_the_test_goes_on(serve, tmp_path):
    server = serve()
    marker = tmp_path / "child-alive"
    hanging = f"(sleep 30; touch {marker}) & sleep 60"
    run = run_locust("single", grpc_host(server), tmp_path, "--action", f"1s:{hanging}", "--action-timeout", "1",
                     *PACED, users=2, run_time="4s")  # fmt: skip
    assert run.returncode == 0, run.stderr
    (action,) = run.rows("actions")
    assert action["Status"] == "timed_out" and 1 <= float(action["Duration (s)"]) < 4
    assert "TIMED OUT: killed after" in run.stderr and "--action-timeout 1 s" in run.stderr
    assert phases_by_number(run.json("audit"))[1]["acked"] > 0, "calls went on after the action hung"
    pids = subprocess.run(["pgrep", "-f", f"touch {marker}"], capture_output=True, text=True).stdout.split()
    assert pids == [], "the command's own children are ended with it"


def test_an_action_in_distributed_mode_runs_once_on_the_master_and_workers_tag_its_phase(serve, tmp_path):
    server = serve()
    ran = tmp_path / "ran"
    run = run_locust("single", grpc_host(server), tmp_path, *distributed_args(2), "--action",
                     f"3s:echo $$ >> {ran}", *PACED, users=4, run_time="7s")  # fmt: skip
    stats = server.stop()
    assert run.returncode == 0, run.stderr
    assert len(ran.read_text().split()) == 1, "one run, by the master"
    audit = run.json("audit")
    phases = phases_by_number(audit)
    assert phases[0]["acked"] > 0 and phases[1]["acked"] > 0, "the workers' logs carry the phase the master opened"
    assert phases[0]["acked"] + phases[1]["acked"] == audit["acked"] == stats["acked"]
    assert audit["status"] == "ok" and all(phase["status"] == "ok" for phase in phases.values())


def test_the_web_ui_shows_the_actions_and_never_lets_a_form_set_or_change_them(serve, tmp_path):
    server = serve()
    planted = tmp_path / "planted"
    with web_ui_process(tmp_path, grpc_host(server), "--action", "1s:true", *PACED) as web:
        page = wait_for_page(web)
        arguments = template_args(page)
        assert "action" not in arguments.get("extra_options", {}), "no form field for actions"
        assert any(tab["key"] == "grpc-actions" for tab in arguments["extended_tabs"])
        for form in ({"action": f"0:touch {planted}"}, {"action_timeout": "1"}, {"action_failure": "stop"}):
            answer = web.post("swarm", {"user_count": "1", "spawn_rate": "1", **form})
            assert not answer["success"] and "cannot be set from the web UI" in answer["message"]
        assert web.post("swarm", {"user_count": "2", "spawn_rate": "2"})["success"]
        stats = web.wait_for("stats/requests", lambda answer: any(
            table["key"] == "grpc-actions" and table["data"] and table["data"][0]["exit_code"] == 0
            for table in answer.get("extended_stats", [])))  # fmt: skip
        row = next(table for table in stats["extended_stats"] if table["key"] == "grpc-actions")["data"][0]
        assert (row["command"], row["status"]) == ("true", row["status"]) and row["status"].startswith("exited 0")
    time.sleep(0.5)
    assert not planted.exists(), "/swarm never runs a command"
    assert not Path(ROOT / "planted").exists()


def test_an_action_at_the_start_of_a_distributed_test_opens_its_phase_on_every_worker(serve, tmp_path):
    """The master's phase message may reach a worker before the spawn message that starts its test."""
    server = serve()
    run = run_locust("single", grpc_host(server), tmp_path, *distributed_args(2), "--action", "0s:true", *PACED,
                     users=4, run_time="3s")  # fmt: skip
    assert run.returncode == 0, run.stderr
    phases = phases_by_number(run.json("audit"))
    assert phases[0]["acked"] == 0 and phases[1]["acked"] == run.json("audit")["acked"] > 0


def test_with_processes_each_action_reports_its_own_exit_code(serve, tmp_path):
    """``--processes`` watches its forked workers with gevent's SIGCHLD handler, which reaps every child of the
    master: an action's exit status must come from that watcher, never be lost (it was reported as 255)."""
    server = serve()
    run = run_locust("single", grpc_host(server), tmp_path, *distributed_args(2), "--action", "1s:hostname",
                     "--action", "1s:/bin/true", "--action", "1s:sleep 0.3; exit 3", "--action", "1s:kill -9 $$",
                     *PACED, users=2, run_time="3s")  # fmt: skip
    outcomes = [(row["Command"], row["Status"], row["Exit Code"]) for row in run.rows("actions")]
    assert outcomes == [("hostname", "ok", "0"), ("/bin/true", "ok", "0"), ("sleep 0.3; exit 3", "failed", "3"),
                        ("kill -9 $$", "failed", "-9")], run.stderr  # fmt: skip
    assert "ignored by a worker" not in run.stderr, "the workers --processes forks say nothing of the master's actions"


def test_an_action_due_while_the_test_stops_never_starts(serve, tmp_path):
    """-t ends the test at 2 s; calls in flight (3 s each) keep it stopping until about 5 s: the action due at 3 s
    falls in that stop and must not start, as one due after the end does not."""
    server = serve("--latency-ms", "3000")
    marker = tmp_path / "ran"
    # The 3 s latency holds every query too: the audit's and the freshness probe's would add seconds after the stop.
    run = run_locust("single", grpc_host(server), tmp_path, "--action", f"3s:touch {marker}", "--grpc-timeout", "10",
                     "--no-audit", "--no-freshness", users=2, run_time="2s")  # fmt: skip
    (action,) = run.rows("actions")
    assert action["Status"] == "not_started", run.stderr
    assert not marker.exists(), "the command ran after the test stopped"
    assert "starting (phase 1)" not in run.stderr


def test_an_action_that_writes_without_end_neither_starves_the_load_nor_overruns_its_timeout(serve, tmp_path):
    """Paced at 60 calls/s: the load of the 3 s while the command writes keeps at least half the rate of the 1 s
    before it (measured in the same run), its timeout and -t hold, and only the first lines are kept."""
    server = serve()
    run = run_locust("single", grpc_host(server), tmp_path, "--action", "1s:yes", "--action-timeout", "2",
                     "--target-rps", "60", users=4, run_time="4s", timeout=60)  # fmt: skip
    (action,) = run.rows("actions")
    assert action["Status"] == "timed_out" and float(action["Duration (s)"]) < 4, (action, run.stderr[-3000:])
    assert len(action["Output"].split(" | ")) == 5 and int(action["Output Bytes"]) > 1_000_000, action
    assert float(run.json("run")["duration_seconds"]) < 6, "-t held"
    phases = phases_by_number(run.json("audit"))
    before, during = phases[0]["acked"] / 1, phases[1]["acked"] / 3
    assert during >= before / 2, (before, during)


def test_actions_due_at_the_same_moment_start_in_phase_order(serve, tmp_path):
    server = serve()
    run = run_locust("single", grpc_host(server), tmp_path, *[arg for n in range(1, 6) for arg in ("--action",
                     f"1s:echo {n}")], *PACED, users=2, run_time="2s")  # fmt: skip
    rows = run.rows("actions")
    assert [row["Output"] for row in rows] == ["1", "2", "3", "4", "5"]
    started = [float(row["Started (unix s)"]) for row in rows]
    assert started == sorted(started), rows
    order = [int(n) for n in re.findall(r"starting \(phase (\d)\)", run.stderr)]
    assert order == [1, 2, 3, 4, 5], run.stderr


def test_an_action_after_the_end_of_the_run_time_is_warned_of_at_the_start_and_the_test_goes_on(serve, tmp_path):
    server = serve()
    run = run_locust("single", grpc_host(server), tmp_path, "--action", "1s:true", "--action", "10s:echo late",
                     *PACED, users=2, run_time="2s")  # fmt: skip
    assert run.returncode == 0, run.stderr
    warning = '-t 2s ends the test before 1 action(s) fall due, which will not run: "echo late" at 10 s'
    assert run.stderr.count(warning) == 1, run.stderr
    assert [row["Status"] for row in run.rows("actions")] == ["ok", "not_started"]


def test_an_action_given_to_a_worker_is_one_line_saying_actions_run_on_the_master(serve, tmp_path):
    server = serve()
    port = str(free_port())
    locust = [*LOCUST, "-f", "locustfiles/single.py", "--master-port", port]
    worker = subprocess.Popen([*locust, "--worker", "--master-host", "127.0.0.1", "--action", "1s:true"], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    master = subprocess.run([*locust, "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", port,
                             "--expect-workers", "1", "--headless", "-u", "1", "-r", "1", "-t", "2s", "--host",
                             grpc_host(server), "--audit-settle", "1", *PACED], cwd=ROOT, capture_output=True,
                            text=True, timeout=90)  # fmt: skip
    try:
        worker_log = worker.communicate(timeout=30)[1]
    finally:
        worker.kill()
    assert master.returncode == 0, master.stderr
    warning = "--action is ignored by a worker: actions run on the master"
    assert worker_log.count(warning) == 1 and warning not in master.stderr, worker_log
