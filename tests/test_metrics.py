"""``/metrics``: scraped during and after a real run, parsed with prometheus_client, equal to the run's files."""

from __future__ import annotations

import csv
import json
import re
import time
from pathlib import Path

import pytest
from conftest import grpc_host
from locust_runs import PACED, ROOT, distributed_args
from prometheus_client.parser import text_string_to_metric_families
from promtool import promtool_check
from web_runs import http, web_ui_process

# Real Locust runs or processes of several seconds each: make test runs them, make test-fast does not.
pytestmark = pytest.mark.slow

PREFIX = "grpc_log_loadtest"


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics`` by name and labels."""
    samples = {}
    for family in text_string_to_metric_families(http(f"{url}/metrics")):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def final_stats(prefix: str, after: dict) -> dict[str, dict[str, str]] | None:
    """Locust's ``_stats.csv`` rows by name once its counts of every RPC are those ``/metrics`` gave after the test
    (None before)."""
    with open(f"{prefix}_stats.csv", newline="") as handle:
        stats = {row["Name"]: row for row in csv.DictReader(handle)}
    counted = {labels[0][1]: value for (name, labels), value in after.items() if name == f"{PREFIX}_requests_total"}
    written = {name: int(row["Request Count"]) for name, row in stats.items() if name in counted}
    return stats if written == counted else None


@pytest.mark.parametrize("processes", [0, 2], ids=["one process", "master and two workers"])
def test_metrics_during_and_after_a_run_equal_locust_stats_and_the_logs_file(serve, tmp_path, processes):
    server = serve()
    args = (*(distributed_args(processes) if processes else ()), "--autostart", "-u", "4", "-r", "4", "-t", "3s",
            "--autoquit", "60", "--audit-settle", "1", *PACED,
            "--mix", "write=6,batch=3,query=1", "--batch-size", "5",
            "--no-freshness")  # calls per server count the freshness probe's queries too  # fmt: skip
    with web_ui_process(tmp_path, grpc_host(server), *args) as web:
        deadline = time.monotonic() + 10  # workers report to the master every 3 s
        while (f"{PREFIX}_requests_total", (("name", "WriteLog"),)) not in (during := scrape(web.url)):
            assert time.monotonic() < deadline, "no requests in /metrics during the run"
            time.sleep(0.3)
        assert during[(f"{PREFIX}_requests_total", (("name", "WriteLog"),))] > 0
        assert during[(f"{PREFIX}_users", ())] == 4 or processes
        web.wait_for("grpc-audit", lambda audit: audit.get("status") not in ("", "pending", "running"))
        after = scrape(web.url)
        # Locust rewrites its --csv files once per second, and a rewrite reaches the disk with the next one: the
        # stats file holds the test's final figures about 2 s after the stop (a fixed 2.5 s wait before)
        while (stats := final_stats(web.prefix, after)) is None:
            assert time.monotonic() < deadline + 30, f"{web.prefix}_stats.csv never held the final figures"
            time.sleep(0.2)
        logs = {row["Name"]: row for row in csv.DictReader(open(f"{web.prefix}_logs.csv", newline=""))}
        audit = json.loads(Path(f"{web.prefix}_audit.json").read_text())
    for name in ("WriteLog", "BatchWriteLog"):
        assert after[(f"{PREFIX}_requests_total", (("name", name),))] == int(stats[name]["Request Count"])
        assert after[(f"{PREFIX}_logs_acked_total", (("name", name),))] == int(logs[name]["Logs Acked"])
        assert after[(f"{PREFIX}_logs_sent_total", (("name", name),))] == int(logs[name]["Logs Sent"])
        count = after[(f"{PREFIX}_latency_seconds_count", (("name", name), ("outcome", "OK")))]
        assert count == int(stats[name]["Request Count"]) - int(stats[name]["Failure Count"])
    assert (
        after[(f"{PREFIX}_requests_total", (("name", "WriteLog"),))]
        >= during[(f"{PREFIX}_requests_total", (("name", "WriteLog"),))]
    ), "a counter only goes up within a test"
    peers = {labels: value for (name, labels), value in after.items() if name == f"{PREFIX}_peer_requests_total"}
    assert peers == {(("peer", f"ipv4:{server.target}"),): int(stats["Aggregated"]["Request Count"])}
    run_id = (("run_id", audit["run_id"]),)
    assert after[(f"{PREFIX}_audit_status", (("run_id", audit["run_id"]), ("status", audit["status"])))] == 1
    assert after[(f"{PREFIX}_audit_acked", run_id)] == audit["acked"]
    assert after[(f"{PREFIX}_audit_lost_max", run_id)] == audit["lost_max"]


def test_metrics_follow_prometheus_conventions_resolve_a_101_ms_service_and_gauges_end_at_zero(serve, tmp_path):
    server = serve("--latency-ms", "101")
    args = ("--autostart", "-u", "4", "-r", "4", "--max-requests", "50", "--autoquit", "60", "--audit-settle", "1",
            "--arrival-rate", "20")  # fmt: skip
    with web_ui_process(tmp_path, grpc_host(server), *args, locustfile="locustfiles/single.py") as web:
        deadline = time.monotonic() + 10
        while scrape(web.url).get((f"{PREFIX}_arrival_rate_offered_per_second", ())) != 20:
            assert time.monotonic() < deadline, "the offered rate never showed in /metrics during the run"
            time.sleep(0.3)
        checked = promtool_check(http(f"{web.url}/metrics"))
        web.wait_for("grpc-audit", lambda audit: audit.get("status") not in ("", "pending", "running"))
        after = scrape(web.url)
        # A labelled counter with nothing counted yet (no failure in this run) is declared, without samples.
        declared = {family.name + "_total" * (family.type == "counter")
                    for family in text_string_to_metric_families(http(f"{web.url}/metrics"))}  # fmt: skip
    dashboard = (ROOT / "deploy" / "grafana" / "grpc-log-loadtest.json").read_text()
    scraped = {name for name, _labels in after} | declared
    for used in set(re.findall(r"grpc_log_loadtest_\w+", dashboard)):
        assert used in scraped, f"the Grafana dashboard queries {used}, which /metrics does not serve"
    assert checked.returncode == 0 and not checked.stdout.strip() and not checked.stderr.strip(), checked
    labels = (("name", "WriteLog"), ("outcome", "OK"))
    calls = after[(f"{PREFIX}_latency_seconds_count", labels)]
    assert calls == 50
    assert after[(f"{PREFIX}_latency_seconds_bucket", (("le", "0.1"), *labels))] == 0, "no call took 100 ms or less"
    assert after[(f"{PREFIX}_latency_seconds_bucket", (("le", "0.0001"), *labels))] == 0
    assert after[(f"{PREFIX}_latency_seconds_bucket", (("le", "+Inf"), *labels))] == calls
    assert after[(f"{PREFIX}_latency_seconds_sum", labels)] >= 0.101 * calls
    for gauge in ("arrival_rate_offered_per_second", "arrival_rate_achieved_per_second", "users"):
        assert after[(f"{PREFIX}_{gauge}", ())] == 0, f"{gauge} is 0 once no test runs"
