"""Locust's web UI with the suite: its options on the start form, no secrets, a real test and the Logs tab."""

from __future__ import annotations

import json
import time
import urllib.error
from pathlib import Path

import psutil
import pytest
from locust_runs import PACED, REAL_LOCUST, distributed_args, free_port
from web_runs import WebUI, http, template_args, wait_for_page, web_ui_process

from grpc_user.locust.web.tabs import AUDIT_FIGURES, AUDIT_ROUTE, AUDIT_TAB_KEY, TAB_KEY

# Real Locust runs or processes of several seconds each: make test runs them, make test-fast does not.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "tok-SECRET-4f1e"
METADATA_VALUE = "meta-SECRET-9b2c"
STATS_TIMEOUT_SECONDS = 10.0
AUDIT_TIMEOUT_SECONDS = 15.0
# The form's field for PACED: a test started from the form paces its users as --target-rps does on the command line.
PACED_FORM = {"target_rps": PACED[1]}


@pytest.fixture
def server(serve):
    """A forked reference server (conftest's ``serve``) that requires the bearer token, killed after the test."""
    return serve("--auth-token", TOKEN)


@pytest.fixture
def web_ui(server, tmp_path):
    """Locust's web UI for the mixed workload, token and metadata set; killed after the test."""
    with web_ui_process(tmp_path, f"grpc://{server.target}", "--batch-size", "7", "--run-id", "web-ui-run",
                        "--grpc-metadata", f"tenant={METADATA_VALUE}", "--audit-settle", "1",
                        env={"GRPC_AUTH_TOKEN": TOKEN}) as web:  # fmt: skip
        yield web


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
    assert tabs == [{"title": "Logs per RPC", "key": TAB_KEY}, {"title": "Delivery audit", "key": AUDIT_TAB_KEY}]
    assert "Logs" not in [tab["title"] for tab in tabs], "Locust has its own Logs tab"
    answer = json.loads(http(f"{web_ui.url}/swarm", {"user_count": "5", "spawn_rate": "5",
                                                      "host": f"grpc://{server.target}", **PACED_FORM}))  # fmt: skip
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
    assert json.loads(http(f"{web_ui.url}/swarm", {"user_count": "5", "spawn_rate": "5", **PACED_FORM}))["success"]
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
    # Calls in flight at the stop finish and are counted: nothing stored that was not seen acknowledged.
    assert 0 < audit["acked"] == audit["persisted"] == server.stop()["stored"]
    assert audit["unexpected"] == 0
    shown = json.loads(http(f"{web_ui.url}/stats/requests"))["extended_stats"][1]
    assert shown["key"] == AUDIT_TAB_KEY
    assert shown["data"][0]["figure"] == "verdict", "the verdict comes first"
    rows = {row["figure"]: row["value"] for row in shown["data"]}
    assert rows.pop("verdict").startswith("Delivery audit OK: all ")
    assert rows.pop("lost") == "0..0"
    assert rows == {key: audit[key] for key in AUDIT_FIGURES if key != "lost"}


def test_swarm_refuses_a_dead_target_in_locust_s_json_before_any_start_and_a_good_target_then_starts(serve, tmp_path):
    """/swarm answered ``success: true`` for a target its preflight then refused (in test_start, after the answer):
    a CI job driving /swarm was told a test started. Now the preflight runs before Locust's view: its one line is
    the answer's message, no test starts (no run id chosen, no user), and the next /swarm with a good host runs."""
    dead = f"grpc://127.0.0.1:{free_port()}"
    good = f"grpc://{serve().target}"
    started_line = "every log of this test carries metadata run_id="
    with web_ui_process(tmp_path, dead, "--audit-settle", "1", *PACED, locustfile="locustfiles/single.py") as web:
        refused = web.post("swarm", {"user_count": "2", "spawn_rate": "2", "host": dead})
        assert refused["success"] is False, refused
        message = refused["message"]
        assert message.startswith(f"target {dead} is not serving the log service: UNAVAILABLE") and "\n" not in message
        bad_option = web.post("swarm", {"user_count": "2", "spawn_rate": "2", "host": good, "batch_size": "0"})
        assert bad_option == {
            "success": False,
            "host": dead,
            "message": "--batch-size='0' is not valid; accepted: a whole number from 1 to 1000",
        }
        time.sleep(0.5)
        stats = web.get("stats/requests")
        assert (stats["state"], stats["user_count"]) == ("ready", 0), "no refused test started"
        assert [(error["name"], error["error"]) for error in stats["errors"]] == [("preflight", message)], "shown"
        output = web.log.read_text()
        assert f"web UI: {message}" in output and started_line not in output and "Ramping" not in output, output
        assert web.post("swarm", {"user_count": "2", "spawn_rate": "2", "host": good})["success"] is True
        stats = web.wait_for("stats/requests", lambda answer: any(row["num_requests"] for row in answer["stats"]))
        assert stats["errors"] == [], "the refused start's failure went with Locust's reset of the stats"
        assert web.log.read_text().count(started_line) == 1
        assert web.post("stop", {})["success"]
        audit = web.wait_for(AUDIT_ROUTE, audit_done)
        assert audit["status"] == "ok" and audit["acked"] > 0, audit


def audit_done(answer: dict) -> bool:
    """The audit of the current test has a verdict."""
    return answer.get("status") not in ("", "pending", "running")


def wait_for_line(log: Path, text: str, timeout: float = 5.0) -> int:
    """How many times ``text`` is in the ``log`` file, once it is there (a few seconds at most)."""
    deadline = time.monotonic() + timeout
    while (count := log.read_text().count(text)) == 0:
        assert time.monotonic() < deadline, f"{text!r} never logged: {log.read_text()[-3000:]}"
        time.sleep(0.1)
    return count


def run_one_test(web: WebUI, seconds: float = 1.5, **form: str) -> dict:
    """Start a test from the form, stop it, return its finished audit (from the suite's audit endpoint)."""
    assert web.post("swarm", {"user_count": "4", "spawn_rate": "4", **form})["success"]
    web.wait_for("stats/requests", lambda stats: stats["state"] == "running")
    time.sleep(seconds)
    assert web.post("stop", {})["success"]
    return web.wait_for("grpc-audit", audit_done)


def test_every_test_in_one_web_ui_has_its_own_run_id_and_audit(serve, tmp_path):
    server = serve()
    with web_ui_process(tmp_path, f"grpc://{server.target}", "--audit-settle", "1", *PACED) as web:
        # Half a second each: a test's calls, not their volume, are what its own run id and audit must count.
        first = run_one_test(web, seconds=0.5, run_id="")  # the form sends its empty Run id field
        second = run_one_test(web, seconds=0.5, run_id="")
        typed = run_one_test(web, seconds=0.5, run_id="release-42")
        again = run_one_test(web, seconds=0.5, run_id="release-42")
        # Each verdict is logged once decided, while the web UI runs on: before, only at its quit
        logged = [wait_for_line(web.log, f"Delivery audit OK: all {audit['acked']:,} acknowledged logs were stored "
                                f"(run_id={audit['run_id']} ") for audit in (first, second, typed, again)]  # fmt: skip
    assert first["run_id"] and second["run_id"] and first["run_id"] != second["run_id"]
    assert (typed["run_id"], again["run_id"]) == ("release-42", "release-42.2")
    for audit in (first, second, typed, again):
        assert audit["status"] == "ok" and audit["acked"] == audit["persisted"] > 0, audit
        assert audit["unexpected"] == 0, "no test counts another test's logs"
    assert all(count == 1 for count in logged), logged
    assert sum(audit["acked"] for audit in (first, second, typed, again)) == server.stop()["stored"]


def test_the_audit_shows_its_progress_then_its_verdict_by_itself(serve, tmp_path):
    # Stores 500 logs/s, far fewer than the run acknowledges (~1,800/s): a backlog of seconds at the stop, so the audit
    # has to wait. A late flush did not hold (--flush-period 2, then 4): a batch that filled stored the whole queue at
    # once, and beside two CPU hogs the audit's first count found every log stored: OK at once, never RUNNING.
    server = serve("--store-rate", "500")
    with web_ui_process(tmp_path, f"grpc://{server.target}", "--audit-settle", "3", *PACED) as web:
        assert web.post("swarm", {"user_count": "3", "spawn_rate": "3"})["success"]
        web.wait_for("stats/requests", lambda stats: stats["state"] == "running")
        time.sleep(1)
        assert web.post("stop", {})["success"]
        settling = web.wait_for("grpc-audit", lambda answer: answer["status"] == "running", timeout=5)
        assert settling["sentence"].startswith("Delivery audit RUNNING: settling: ")
        assert settling["persisted"] < settling["acked"]
        done = web.wait_for("grpc-audit", audit_done)
        assert done["sentence"].startswith("Delivery audit OK: all ") and done["persisted"] == done["acked"]
        page = http(f"{web.url}/")
        assert 'id = "grpc-audit-strip"' in page and 'fetch("./grpc-audit"' in page


def test_the_web_ui_refuses_to_change_security_settings_or_send_credentials_elsewhere(web_ui, server):
    for form, refused in (({"grpc_token_env": "HOME"}, "--grpc-token-env"),
                          ({"grpc_metadata": "tenant=other"}, "--grpc-metadata"),
                          ({"host": "grpc://127.0.0.1:1"}, "--host cannot be changed")):  # fmt: skip
        answer = web_ui.post("swarm", {"user_count": "1", "spawn_rate": "1", **form})
        assert not answer["success"] and refused in answer["message"], answer
    assert web_ui.get("stats/requests")["state"] == "ready", "no refused test started"
    assert server.stats()["calls"] == {}, "nothing was sent anywhere"


def test_a_form_the_command_line_would_refuse_is_refused_by_swarm_before_any_user_spawns(web_ui, server):
    for form, refused in (
        ({"arrival_rate": "abc"}, "--arrival-rate='abc' is not valid; accepted: calls per second"),
        ({"arrival_rate": "0"}, "--arrival-rate='0' is not valid"),
        (
            {"grpc_timeout": "1e12"},
            "--grpc-timeout='1e12' is not valid; accepted: a number of seconds >= 0.001 and <= 86400",
        ),
        ({"capacity_search": "true", "capacity_step": "0.01"}, "--capacity-step='0.01'"),
        ({"capacity_search": "true", "target_rps": "20"}, "--target-rps='20' is not valid"),
        (
            {"freshness_poll_interval": "1e9"},
            "--freshness-poll-interval='1e9' is not valid; accepted: a number of seconds >= 0.01 and <= 10",
        ),
        (
            {"no_freshness": "true", "freshness_sample_rate": "5"},
            "--freshness-sample-rate='5' is not valid; accepted: with the freshness probe only",
        ),
    ):
        answer = web_ui.post("swarm", {"user_count": "2", "spawn_rate": "2", **form})
        assert answer["success"] is False and answer["message"].startswith(refused), answer
        assert "\n" not in answer["message"]
    time.sleep(0.5)
    assert web_ui.get("stats/requests")["state"] == "ready", "no refused test started"
    assert server.stats()["calls"] == {}, "no user spawned, nothing was sent"
    assert web_ui.post("swarm", {"user_count": "1", "spawn_rate": "1", "arrival_rate": "20"})["success"]


def swarm(web: WebUI, form: dict[str, str]) -> dict:
    """POST the form to /swarm; its JSON answer (an HTML error page fails the test)."""
    try:
        return web.post("swarm", form)
    except urllib.error.HTTPError as error:
        pytest.fail(f"/swarm answered {error.code}, not JSON, for {form}: {error.read().decode()[:300]}")


def test_a_refused_swarm_form_changes_no_option_and_every_field_is_checked_before_locust_applies_it(serve, tmp_path):
    server = serve()
    with web_ui_process(tmp_path, f"grpc://{server.target}", "--audit-settle", "1", *PACED,
                        locustfile="locustfiles/single.py") as web:  # fmt: skip
        for form, refused in (
            ({"user_count": "-5", "spawn_rate": "3", "batch_size": "0"}, "user_count='-5' is not valid"),
            ({"user_count": "2", "spawn_rate": "2", "message_bytes": "-1"}, "--message-bytes='-1' is not valid"),
            # Locust's /swarm wrote the fields before these, then refused: they stayed for the next start
            ({"run_id": "left-behind", "max_requests": "3", "user_count": "2"}, "spawn_rate='' is not valid"),
            (
                {"run_id": "left-behind", "max_requests": "3", "user_count": "2", "spawn_rate": "2", "run_time": "abc"},
                "run_time='abc' is not valid; accepted: a Locust timespan",
            ),
            (
                {"run_id": "left-behind", "max_requests": "3", "user_count": "2", "spawn_rate": "0"},
                "spawn_rate='0' is not valid",
            ),
            # an option the form does not show: Locust's /swarm raised reading it (an HTML error, no JSON)
            ({"user_count": "2", "spawn_rate": "2", "expect_workers": "abc"}, "expect_workers='abc' is not valid"),
            (
                {"run_id": "left-behind", "user_count": "2", "spawn_rate": "2", "web_port": "1"},
                "web_port='1' is not valid; accepted: a field of the start form",
            ),
        ):
            answer = swarm(web, form)
            assert answer["success"] is False and answer["message"].startswith(refused), (form, answer)
            assert "\n" not in answer["message"]
        assert web.get("stats/requests")["state"] == "ready" and server.stats()["calls"] == {}, "nothing started"
        assert swarm(web, {"user_count": "2", "spawn_rate": "2"})["success"]
        pending = web.wait_for("grpc-audit", lambda answer: answer["status"] == "pending")
        assert pending["run_id"] != "left-behind", "a refused form's run_id was left in the options"
        # a refused max_requests=3 left in the options ended the test after 3 calls; batch_size=0 refused it
        web.wait_for("stats/requests", lambda stats: stats["user_count"] == 2 and stats["stats"]
                     and stats["stats"][-1]["num_requests"] > 3, timeout=10)  # fmt: skip
        assert web.post("stop", {})["success"]


def test_a_distributed_web_ui_audits_after_every_worker_sent_its_final_counts(serve, tmp_path):
    server = serve()
    with web_ui_process(tmp_path, f"grpc://{server.target}", *distributed_args(2), "--audit-settle", "1", *PACED,
                        locustfile="locustfiles/single.py") as web:  # fmt: skip
        web.wait_for("stats/requests", lambda stats: stats["workers"] and len(stats["workers"]) == 2)
        audit = run_one_test(web, seconds=2)
        stats = web.get("stats/requests")
    acked = server.stop()["acked"]
    assert audit["status"] == "ok" and audit["acked"] == audit["persisted"] == acked > 0, audit
    logged = {row["name"]: row for row in stats["extended_stats"][0]["data"]}["Aggregated"]
    requests = {row["name"]: row for row in stats["stats"]}["Aggregated"]["num_requests"]
    assert logged["logs_acked"] == acked and logged["requests"] == requests


def test_the_suite_tabs_and_audit_work_under_a_web_base_path(serve, tmp_path):
    server = serve()
    with web_ui_process(tmp_path, f"grpc://{server.target}", "--audit-settle", "1", *PACED,
                        base_path="/loadtest") as web:  # fmt: skip
        assert "grpc-audit-strip" in http(f"{web.url}/")
        audit = run_one_test(web)
        stats = web.get("stats/requests")
    assert audit["status"] == "ok"
    assert [table["key"] for table in stats["extended_stats"]] == [TAB_KEY, AUDIT_TAB_KEY]


def test_the_channel_of_a_test_is_closed_when_its_audit_is_done(serve, tmp_path):
    server = serve()
    with web_ui_process(tmp_path, f"grpc://{server.target}", "--audit-settle", "1", *PACED, locust=REAL_LOCUST) as web:
        run_one_test(web)
        connections = [link for link in psutil.Process(web.process.pid).net_connections("tcp")
                       if link.raddr and link.raddr.port == server.port]  # fmt: skip
    assert connections == [], "a web UI that runs many tests must not keep a channel per test"
