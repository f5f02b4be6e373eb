"""--arrival-rate: an open model. Calls start on a clock that does not wait for answers, latency counts from
each call's scheduled start, arrivals that find every user busy are dropped and counted."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from conftest import grpc_host
from locust_runs import ROOT, LocustRun, distributed_args, run_locust
from web_runs import web_ui_process

RATE = 200


def percentile_ms(run: LocustRun, name: str, column: str = "95%") -> float:
    """A percentile of Locust's stats for ``name``."""
    return float(run.stats()[name][column])


def test_a_stalled_service_shows_in_the_latency_instead_of_lowering_the_offered_rate(serve, tmp_path):
    """1 s of a 4 s run the service holds every call: an open model keeps offering 200 calls/s and the
    calls caught in the stall wait up to a second from their scheduled start (pacing hides it)."""
    server = serve("--stall-at", "1.5", "--stall-for", "1")
    run = run_locust("single", grpc_host(server), tmp_path, "--arrival-rate", str(RATE), users=300, run_time="4s")
    assert run.returncode == 0, run.stderr[-3000:]
    assert abs(run.requests("WriteLog") - 4 * RATE) <= 0.05 * 4 * RATE, "the rate did not wait for answers"
    assert percentile_ms(run, "WriteLog") >= 500, "the stall is in the latency"
    service = {row["Outcome"]: row for row in run.rows("service_time") if row["Name"] == "WriteLog"}["OK"]
    assert float(service["50%"]) < 50, "the service time (send to answer) stays short for most calls"
    report = subprocess.run([sys.executable, "-m", "reports", run.prefix], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert report.returncode == 0, report.stderr
    markdown = Path(run.prefix).with_name("report.md").read_text()
    assert "Measured from each call's scheduled start" in markdown and "## Service time by outcome" in markdown

    paced = serve("--stall-at", "1.5", "--stall-for", "1")
    pacing = run_locust("single", grpc_host(paced), tmp_path / "paced", "--target-rps", str(RATE), users=20,
                        run_time="4s")  # fmt: skip
    assert percentile_ms(pacing, "WriteLog") < 100, "pacing (closed model) waits for answers and hides the stall"


def test_arrivals_that_find_every_user_busy_are_dropped_and_counted(serve, tmp_path):
    server = serve("--latency-ms", "200")
    run = run_locust("single", grpc_host(server), tmp_path, "--arrival-rate", "100", users=5, run_time="3s")
    assert run.returncode == 1, "dropped arrivals are failures"
    dropped = run.failures()["ARRIVAL_DROPPED: every user was busy at the scheduled start (raise -u)"]
    assert run.logs()["Arrival"]["Requests"] == dropped
    offered = run.requests("WriteLog") + dropped
    assert abs(offered - 300) <= 30, f"{offered} arrivals offered in 3 s at 100/s"
    assert run.requests("WriteLog") <= 5 * 3 / 0.2 + 5, "at most -u calls in flight"


def test_the_rate_is_a_total_split_exactly_over_workers_even_an_idle_one(serve, tmp_path):
    server = serve()
    run = run_locust("single", grpc_host(server), tmp_path, *distributed_args(2), "--arrival-rate", str(RATE),
                     users=1, run_time="3s")  # fmt: skip
    assert run.returncode in (0, 1), run.stderr[-3000:]
    dropped = run.logs().get("Arrival", {}).get("Requests", 0)
    assert dropped <= 0.05 * 3 * RATE, "one user keeps up with 200 calls/s of 1 ms calls (a slow one drops a start)"
    offered = run.requests("WriteLog") + dropped
    assert abs(offered - 3 * RATE) <= 0.1 * 3 * RATE, "one user on one worker takes the whole rate"


def test_a_ramp_of_rates_offers_what_its_schedule_says(serve, tmp_path):
    server = serve()
    run = run_locust("single", grpc_host(server), tmp_path, "--arrival-rate", "50:250:2s", users=20, run_time="3s")
    assert run.returncode == 0, run.stderr[-3000:]
    expected = (50 + 250) / 2 * 2 + 250 * 1
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
