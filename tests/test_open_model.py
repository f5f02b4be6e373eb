"""--arrival-rate: an open model. Calls start on a clock that does not wait for answers, latency counts from
each call's scheduled start, arrivals that find every user busy are dropped and counted."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import grpc_host
from locust_runs import ROOT, LocustRun, distributed_args, run_locust
from web_runs import web_ui_process

from reports.cli import main as report

# Real Locust runs or processes of several seconds each: make test runs them, make test-fast does not.
pytestmark = pytest.mark.slow

RATE = 200


def percentile_ms(run: LocustRun, name: str, column: str = "95%") -> float:
    """A percentile of Locust's stats for ``name``."""
    return float(run.stats()[name][column])


def test_a_stalled_service_shows_in_the_latency_instead_of_lowering_the_offered_rate(serve, tmp_path, capsys):
    """1 s of a 4 s run the service holds every call: an open model keeps offering 200 calls/s and the
    calls caught in the stall wait up to a second from their scheduled start (pacing hides it)."""
    server = serve("--stall-at", "1.5", "--stall-for", "1")
    run = run_locust("single", grpc_host(server), tmp_path, "--arrival-rate", str(RATE), users=300, run_time="4s")
    # The 200 calls the stall held end at once; with both cores busy their answers can hold this process's clock past
    # its 0.25 s: a few starts dropped as the generator's (exit 1), never as the service's, never many.
    if run.returncode != 0:
        arrivals = {key: int(value) for key, value in run.rows("arrivals")[0].items()}
        assert run.returncode == 1, run.stderr[-3000:]
        assert arrivals["Dropped"] == arrivals["Dropped GENERATOR_BEHIND"] <= 0.05 * 4 * RATE, run.stderr[-3000:]
    # Pacing would have sent about 3 s of the rate (600); a busy machine's start and stop cost a few percent of 800.
    assert abs(run.requests("WriteLog") - 4 * RATE) <= 0.1 * 4 * RATE, "the rate did not wait for answers"
    assert percentile_ms(run, "WriteLog") >= 500, "the stall is in the latency"
    service = {row["Outcome"]: row for row in run.rows("service_time") if row["Name"] == "WriteLog"}["OK"]
    assert float(service["50%"]) < 50, "the service time (send to answer) stays short for most calls"
    assert report([run.prefix, "--no-charts"]) == 0, capsys.readouterr().err
    markdown = Path(run.prefix).with_name("report.md").read_text()
    assert "Measured from each call's scheduled start" in markdown and "## Service time by outcome" in markdown

    paced = serve("--stall-at", "1.5", "--stall-for", "1")
    pacing = run_locust("single", grpc_host(paced), tmp_path / "paced", "--target-rps", str(RATE), users=20,
                        run_time="4s")  # fmt: skip
    # Pacing's 20 users are held by the stall once each: about 20 of 600 calls (3%) show it, so its p95 can (290 ms
    # on a busy machine), its p90 cannot.
    assert percentile_ms(pacing, "WriteLog", "90%") < 100, "pacing (closed model) waits for answers and hides the stall"


def test_dropped_arrivals_are_counted_apart_from_requests_so_no_figure_or_gate_counts_them(serve, tmp_path, capsys):
    """Issue 20.5 scaled down: a 500 ms service, 2 users, 50 arrivals/s. The service handles about 4 calls/s; the
    other arrivals find every user busy and are dropped: counted by the suite, never Locust requests."""
    server = serve("--latency-ms", "500")
    run = run_locust("single", grpc_host(server), tmp_path, "--arrival-rate", "50", users=2, run_time="4s")
    assert run.returncode == 1, "an open model that could not offer its rate fails the run"
    assert "Arrival" not in run.stats() and not any("ARRIVAL" in error for error in run.failures())
    arrivals = {key: int(value) for key, value in run.rows("arrivals")[0].items()}
    made = run.requests("WriteLog")
    assert arrivals["Made"] == made <= 2 * 4 / 0.5 + 2, "at most -u calls in flight"
    assert abs(arrivals["Offered"] - 200) <= 25, f"{arrivals['Offered']} arrivals offered in 4 s at 50/s"
    assert arrivals["Dropped"] == arrivals["Dropped USERS_BUSY"] == arrivals["Offered"] - made
    assert float(run.stats()["Aggregated"]["50%"]) >= 500, "no drop pulls the percentiles below the service's time"
    assert "because every user was busy with a call at the scheduled start (raise -u)" in run.stderr
    history = run.rows("arrivals_history")
    drops = [int(row["Dropped"]) for row in history]
    assert sum(later > earlier for earlier, later in zip(drops, drops[1:], strict=False)) >= 2, \
        f"drops are counted in the intervals they happen in, not in a burst: {drops}"  # fmt: skip
    code, output = report([run.prefix, "--min-rps", "20", "--no-charts"]), capsys.readouterr()
    assert code == 1 and "< --min-rps 20" in output.err, output
    markdown = Path(run.prefix).with_name("report.md").read_text()
    assert "## Arrivals" in markdown and "| dropped: USERS_BUSY |" in markdown


def test_a_locustfiles_own_wait_time_does_not_defeat_the_rate_options(serve, tmp_path):
    """constant(1) and 10 users would give 10 calls/s: --target-rps 40 and --arrival-rate 40 replace it, said once."""
    server = serve()
    locustfile = str(ROOT / "tests" / "locustfiles" / "own_wait_time.py")
    for option in ("--target-rps", "--arrival-rate"):
        run = run_locust("own", grpc_host(server), tmp_path / option, option, "40", users=10, run_time="3s",
                         locustfile=locustfile)  # fmt: skip
        assert run.returncode == 0, run.stderr[-3000:]
        assert run.stderr.count(f"SleepyWriter.wait_time is ignored: {option} sets the rate") == 1, run.stderr[-3000:]
        assert run.requests("WriteLog") >= 0.75 * 40 * 3, f"{option}: {run.requests('WriteLog')} calls in 3 s"


def test_a_drop_names_users_that_were_not_ready_rather_than_busy(serve, tmp_path):
    """Users that spend their time in their own task code between calls are not busy with calls: the drop says so."""
    server = serve()
    locustfile = str(ROOT / "tests" / "locustfiles" / "slow_task_code.py")
    run = run_locust("slow", grpc_host(server), tmp_path, "--arrival-rate", "20", users=2, run_time="3s",
                     locustfile=locustfile)  # fmt: skip
    arrivals = {key: int(value) for key, value in run.rows("arrivals")[0].items()}
    assert arrivals["Dropped USERS_NOT_READY"] > 0 and arrivals["Dropped USERS_BUSY"] == 0, arrivals
    assert "because no user was ready for work at the scheduled start" in run.stderr


def test_the_rate_is_a_total_split_exactly_over_workers_even_an_idle_one(serve, tmp_path):
    server = serve()
    run = run_locust("single", grpc_host(server), tmp_path, *distributed_args(2), "--arrival-rate", str(RATE),
                     users=1, run_time="3s")  # fmt: skip
    assert run.returncode in (0, 1), run.stderr[-3000:]
    dropped = int(run.rows("arrivals")[0]["Dropped"])
    # An idle worker that kept its half of the rate would drop about half the arrivals (300 of 600); a busy
    # machine makes the one user drop some starts too (85 and 161 of 600 with four test processes on two cores).
    assert dropped <= 0.4 * 3 * RATE, f"{dropped} of {3 * RATE} arrivals dropped: the idle worker kept its share"
    offered = run.requests("WriteLog") + dropped
    assert abs(offered - 3 * RATE) <= 0.1 * 3 * RATE, "one user on one worker takes the whole rate"


def test_a_ramp_of_rates_offers_what_its_schedule_says(serve, tmp_path):
    """-u is the most calls in flight, not part of the schedule: 100 users ride out a 0.4 s stall of a busy machine at
    250 calls/s (20 dropped 5 arrivals, and so failed the run, with both cores busy)."""
    server = serve()
    run = run_locust("single", grpc_host(server), tmp_path, "--arrival-rate", "50:250:2s", users=100, run_time="3s")
    expected = (50 + 250) / 2 * 2 + 250 * 1
    # With both cores busy and more, this process's clock can be held past its 0.25 s (23 of 500 starts): a few starts
    # dropped as the generator's (exit 1), never as the users', never many.
    if run.returncode != 0:
        arrivals = {key: int(value) for key, value in run.rows("arrivals")[0].items()}
        assert run.returncode == 1, run.stderr[-3000:]
        assert arrivals["Dropped"] == arrivals["Dropped GENERATOR_BEHIND"] <= 0.05 * expected, run.stderr[-3000:]
    assert abs(run.requests("WriteLog") - expected) <= 0.1 * expected


def written(web) -> tuple[float, int]:
    """(now, WriteLog calls the master has counted so far)."""
    stats = web.get("stats/requests")["stats"]
    return time.monotonic(), sum(row["num_requests"] for row in stats if row["name"] == "WriteLog")


def test_a_distributed_open_model_keeps_its_total_rate_when_the_users_change(serve, tmp_path):
    """The web UI doubles the users mid-test: the two workers' shares follow, the total stays at the rate."""
    server = serve()
    rate = 60
    with web_ui_process(tmp_path, grpc_host(server), *distributed_args(2), "--arrival-rate", str(rate), "--no-audit",
                        locustfile="locustfiles/single.py") as web:  # fmt: skip
        deadline = time.monotonic() + 20
        while web.get("stats/requests").get("worker_count", 0) < 2:
            assert time.monotonic() < deadline, "the two workers never connected"
            time.sleep(0.2)
        assert web.post("swarm", {"user_count": "4", "spawn_rate": "4"})["success"]
        web.wait_for("stats/requests", lambda stats: stats["state"] == "running")
        time.sleep(1.5)
        assert web.post("swarm", {"user_count": "8", "spawn_rate": "8"})["success"]
        time.sleep(3.5)  # the workers' first reports after the change (every 3 s)
        first = written(web)
        time.sleep(7.5)
        last = written(web)
        web.post("stop", {})
    achieved = (last[1] - first[1]) / (last[0] - first[0])
    assert achieved <= 1.35 * rate, f"{achieved:.0f} calls/s after doubling the users, offered {rate} in total"
    assert achieved >= 0.6 * rate, f"{achieved:.0f} calls/s: the open model stopped offering"


def test_starts_after_max_requests_is_reached_are_not_offered_so_not_dropped(serve, tmp_path):
    """The last permitted calls take 200 ms to answer: the starts scheduled meanwhile are no drop."""
    server = serve("--latency-ms", "200")
    run = run_locust("single", grpc_host(server), tmp_path, "--arrival-rate", "100", "--max-requests", "150",
                     users=60, run_time="20s")  # fmt: skip
    arrivals = {key: int(value) for key, value in run.rows("arrivals")[0].items()}
    assert (arrivals["Made"], arrivals["Dropped"]) == (150, 0) and run.requests("WriteLog") == 150, arrivals
    assert run.returncode == 0, run.stderr[-3000:]
