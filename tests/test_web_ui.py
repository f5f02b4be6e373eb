"""Locust's web UI with the suite: its options on the start form, no secrets, a real test and the Logs tab."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from locust_runs import free_port

from grpc_user.web_ui import AUDIT_FIGURES, AUDIT_TAB_KEY, TAB_KEY
from reference_server.process import start_server_process

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "tok-SECRET-4f1e"
METADATA_VALUE = "meta-SECRET-9b2c"
START_TIMEOUT_SECONDS = 15.0
STATS_TIMEOUT_SECONDS = 10.0
AUDIT_TIMEOUT_SECONDS = 15.0


def http(url: str, form: dict[str, str] | None = None) -> str:
    """GET (or POST ``form`` urlencoded) and return the body."""
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    with urllib.request.urlopen(url, data=data, timeout=5) as response:
        return response.read().decode()


@dataclass
class WebUI:
    """A running Locust web UI: its address, process, output file and CSV prefix."""

    url: str
    process: subprocess.Popen
    log: Path
    prefix: str


def wait_for_page(web: WebUI) -> str:
    """The body of the index page once the web UI answers."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if web.process.poll() is not None:
            pytest.fail(f"locust exited with {web.process.returncode}: {web.log.read_text()}")
        try:
            return http(f"{web.url}/")
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"no answer from {web.url} after {START_TIMEOUT_SECONDS:g} s")


def template_args(page: str) -> dict:
    """The ``window.templateArgs`` JSON Locust embeds in its index page."""
    found = re.search(r"window\.templateArgs = (\{.*\})\s*$", page, re.MULTILINE)
    assert found, "no templateArgs in the index page"
    return json.loads(found.group(1))


@pytest.fixture
def server():
    """A reference server that requires the bearer token."""
    running = start_server_process("--flush-period", "0.1", "--queue-size", "100000", "--auth-token", TOKEN)
    yield running
    running.kill()


@pytest.fixture
def web_ui(server, tmp_path):
    """Locust's web UI for the mixed workload, token and metadata set; killed after the test."""
    port, prefix = free_port(), str(tmp_path / "web")
    command = [sys.executable, "-m", "locust", "-f", "locustfiles/mixed.py", "--web-host", "127.0.0.1",
               "--web-port", str(port), "--host", f"grpc://{server.target}", "--batch-size", "7",
               "--run-id", "web-ui-run", "--grpc-metadata", f"tenant={METADATA_VALUE}", "--audit-settle", "1",
               "--csv", prefix]  # fmt: skip
    log = tmp_path / "locust.log"
    with open(log, "w") as output:
        process = subprocess.Popen(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT,
                                   env={**os.environ, "GRPC_AUTH_TOKEN": TOKEN})  # fmt: skip
    try:
        yield WebUI(f"http://127.0.0.1:{port}", process, log, prefix)
    finally:
        process.kill()
        process.wait(10)


def test_start_page_offers_the_suite_options_and_no_secrets(web_ui):
    page = wait_for_page(web_ui)
    options = template_args(page)["extra_options"]
    assert {"batch_size", "mix", "run_id", "max_requests", "no_audit", "audit_allow_loss"} <= set(options)
    assert options["batch_size"]["default_value"] == "7"
    assert options["run_id"]["default_value"] == "web-ui-run"
    assert not {"grpc_metadata", "grpc_token_env", "grpc_ca", "grpc_cert", "grpc_key"} & set(options)
    assert TOKEN not in page and METADATA_VALUE not in page


def test_a_test_started_from_the_web_ui_shows_requests_and_the_logs_tab(web_ui, server):
    page = wait_for_page(web_ui)
    tabs = template_args(page)["extended_tabs"]
    assert tabs == [{"title": "Logs", "key": TAB_KEY}, {"title": "Delivery audit", "key": AUDIT_TAB_KEY}]
    answer = json.loads(http(f"{web_ui.url}/swarm", {"user_count": "5", "spawn_rate": "5",
                                                      "host": f"grpc://{server.target}"}))  # fmt: skip
    assert answer["success"], answer
    deadline = time.monotonic() + STATS_TIMEOUT_SECONDS
    while True:
        body = http(f"{web_ui.url}/stats/requests")
        stats = json.loads(body)
        requests = {row["name"]: row["num_requests"] for row in stats["stats"]}
        logs = {row["name"]: row for row in stats["extended_stats"][0]["data"]}
        if requests.get("WriteLog", 0) > 0 and logs.get("BatchWriteLog", {}).get("logs_acked", 0) > 0:
            break
        assert time.monotonic() < deadline, f"no writes and batches yet: {stats}"
        time.sleep(0.5)
    assert stats["extended_stats"][0]["key"] == TAB_KEY
    assert logs["WriteLog"]["logs_acked"] > 0
    assert logs["BatchWriteLog"]["logs_sent"] == 7 * logs["BatchWriteLog"]["requests"]
    written = logs["WriteLog"]["logs_acked"] + logs["BatchWriteLog"]["logs_acked"]
    assert logs["Aggregated"]["logs_acked"] == written, "queries acknowledge no logs"
    assert stats["fail_ratio"] == 0, "every call carried the bearer token"
    assert TOKEN not in body and METADATA_VALUE not in body


def test_stopping_from_the_web_ui_runs_the_delivery_audit(web_ui, server):
    wait_for_page(web_ui)
    assert json.loads(http(f"{web_ui.url}/swarm", {"user_count": "5", "spawn_rate": "5"}))["success"]
    time.sleep(2)
    assert json.loads(http(f"{web_ui.url}/stop", {}))["success"]
    audit_file = Path(f"{web_ui.prefix}_audit.json")
    deadline = time.monotonic() + AUDIT_TIMEOUT_SECONDS
    while not audit_file.exists():
        assert time.monotonic() < deadline, f"no {audit_file.name} after {AUDIT_TIMEOUT_SECONDS:g} s"
        time.sleep(0.2)
    time.sleep(0.2)  # written in one go, but let the writer close the file
    audit = json.loads(audit_file.read_text())
    assert (audit["run_id"], audit["status"], audit["lost"]) == ("web-ui-run", "ok", 0)
    # Calls abandoned at the stop may still be stored: "unexpected", never lost.
    assert 0 < audit["acked"] <= audit["persisted"] <= server.stop()["stored"]
    assert audit["unexpected"] == audit["persisted"] - audit["acked"]
    shown = json.loads(http(f"{web_ui.url}/stats/requests"))["extended_stats"][1]
    assert shown["key"] == AUDIT_TAB_KEY
    assert {row["name"]: row["value"] for row in shown["data"]} == {key: audit[key] for key in AUDIT_FIGURES}


def test_a_dead_target_is_shown_in_the_web_ui_and_no_user_keeps_running(tmp_path):
    dead = f"grpc://127.0.0.1:{free_port()}"
    port, log = free_port(), tmp_path / "locust.log"
    command = [sys.executable, "-m", "locust", "-f", "locustfiles/single.py", "--web-host", "127.0.0.1",
               "--web-port", str(port), "--host", dead]  # fmt: skip
    with open(log, "w") as output:
        process = subprocess.Popen(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)
    web = WebUI(f"http://127.0.0.1:{port}", process, log, "")
    try:
        wait_for_page(web)
        assert json.loads(http(f"{web.url}/swarm", {"user_count": "5", "spawn_rate": "5", "host": dead}))["success"]
        deadline = time.monotonic() + STATS_TIMEOUT_SECONDS
        while not (stats := json.loads(http(f"{web.url}/stats/requests")))["errors"]:
            assert time.monotonic() < deadline, f"no error shown for {dead}"
            time.sleep(0.2)
        error = stats["errors"][0]
        assert error["name"] == "preflight" and dead.removeprefix("grpc://") in error["error"]
        while stats["state"] not in ("stopped", "ready"):
            assert time.monotonic() < deadline, f"the test kept running against {dead}: {stats['state']}"
            time.sleep(0.2)
            stats = json.loads(http(f"{web.url}/stats/requests"))
        assert {row["name"] for row in stats["stats"]} <= {"preflight", "Aggregated"}
    finally:
        process.kill()
        process.wait(10)
