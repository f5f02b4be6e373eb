"""Locust's distributed mode: a real master with two real workers (``--processes 2``), every figure exact."""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
import yaml
from locust_runs import LOCUST, PACED, distributed_args, free_port, run_locust

from grpc_user.locust.settings.forked_workers import use_free_port_for_forked_workers
from reports.cli import main as report

# Real Locust runs or processes of several seconds each: make test runs them, make test-fast does not.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def server(serve):
    """A forked reference server (conftest's ``serve``: fast flushes, room for every log), killed after the test."""
    return serve()


def test_master_and_two_workers_add_up_calls_logs_and_audit_exactly(server, tmp_path, capsys):
    run = run_locust("mixed", f"grpc://{server.target}", tmp_path, *distributed_args(2), "--max-requests", "900",
                     "--mix", "write=60,batch=30,query=10", "--batch-size", "10", users=10, run_time="60s")  # fmt: skip
    stats = server.stop()
    assert run.returncode == 0, run.stderr
    assert run.requests() == 900, "--max-requests is a total, not per worker"
    logs = run.logs()["Aggregated"]
    assert logs["Logs Acked"] == stats["acked"] == logs["Logs Sent"]
    assert logs["Requests"] == 900
    audit = run.json("audit")
    assert (audit["acked"], audit["persisted"], audit["lost"]) == (stats["acked"], stats["stored"], 0)
    assert audit["status"] == "ok"
    code, output = report([run.prefix, "--json", "--max-lost", "0", "--no-charts"]), capsys.readouterr()
    assert code == 0, output.err
    summary = json.loads(output.out)
    assert (summary["requests"], summary["success_count"], summary["audit"]["lost"]) == (900, stats["acked"], 0)
    assert "| Aggregated | 900 |" in Path(run.prefix).with_name("report.md").read_text()


def test_one_run_id_is_chosen_by_the_master_for_every_worker(server, tmp_path):
    from grpc_user import LogClient

    run = run_locust("single", f"grpc://{server.target}", tmp_path, *distributed_args(2), "--max-requests", "200",
                     users=4, run_time="60s")  # fmt: skip
    assert run.returncode == 0, run.stderr
    run_id = run.json("run")["run_id"]
    with LogClient(server.target) as client:
        assert client.query_logs(run_id=run_id, limit=1).total_count == 200
    assert server.stop()["acked"] == 200


def test_kubernetes_example_is_well_formed_with_master_and_worker_commands():
    documents = list(yaml.safe_load_all((ROOT / "deploy/kubernetes/locust-grpc-log.yaml").read_text()))
    by_name = {(doc["kind"], doc["metadata"]["name"]): doc for doc in documents}
    config = by_name[("ConfigMap", "grpc-log-loadtest")]["data"]
    assert (ROOT / config["LOCUST_LOCUSTFILE"].removeprefix("/app/")).is_file()
    assert config["LOCUST_HOST"].startswith("grpc://")
    master = by_name[("Deployment", "locust-master")]["spec"]["template"]["spec"]["containers"][0]
    worker = by_name[("Deployment", "locust-worker")]["spec"]["template"]["spec"]["containers"][0]
    assert master["command"] == worker["command"] == ["locust"]
    assert {"--master", "--expect-workers", "--csv"} <= set(master["args"])
    assert worker["args"] == ["--worker", "--master-host", "locust-master", "--master-port", "5557"]
    service_ports = {port["port"] for port in by_name[("Service", "locust-master")]["spec"]["ports"]}
    assert service_ports == {5557, 8089}
    annotations = by_name[("Deployment", "locust-master")]["spec"]["template"]["metadata"]["annotations"]
    scrape = {"prometheus.io/scrape": "true", "prometheus.io/port": "8089", "prometheus.io/path": "/metrics"}
    assert annotations == scrape
    assert "--autostart" in master["args"] and "--headless" not in master["args"], "the web UI serves /metrics"
    expected_workers = int(master["args"][master["args"].index("--expect-workers") + 1])
    assert by_name[("Deployment", "locust-worker")]["spec"]["replicas"] == expected_workers


def test_make_distributed_listens_for_workers_on_loopback_only(server, tmp_path):
    """Spawn messages carry every option in cleartext: the master must not listen on every interface."""
    port = str(free_port())
    command = ["make", "--no-print-directory", "distributed", "WORKERS=2", "USERS=2", "SPAWN_RATE=2", "RUN_TIME=4s",
               "WORKLOAD=single", f"HOST=grpc://{server.target}", f"RUN_DIR={tmp_path}/run",
               f"ARGS=--master-bind-port {port} --master-port {port} --audit-settle 1 --target-rps 20"]  # fmt: skip
    make = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, listening = time.monotonic() + 20, set()
        while time.monotonic() < deadline and make.poll() is None and len(listening) < 1:
            time.sleep(0.5)
            for process in psutil.Process(make.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    listening |= {(link.laddr.ip, link.laddr.port) for link in process.net_connections("tcp")
                                  if link.status == psutil.CONN_LISTEN}  # fmt: skip
        assert (("127.0.0.1", int(port))) in listening, listening
        assert all(ip == "127.0.0.1" for ip, _ in listening), f"something listens beyond loopback: {listening}"
    finally:
        output, _ = make.communicate(timeout=60)
    assert make.returncode == 0, output[-3000:]


def _locust_process(*args: str, output: Path) -> subprocess.Popen:
    with open(output, "w") as log:
        return subprocess.Popen([*LOCUST, "-f", "locustfiles/batch.py", *args], cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT, text=True)  # fmt: skip


def _wait_for_line(log: Path, line: str, process: subprocess.Popen, seconds: float) -> None:
    """Wait until `line` is in the file `log`; fail at once if `process` exits first, or after `seconds`."""
    deadline = time.monotonic() + seconds
    while line not in log.read_text():
        assert process.poll() is None and time.monotonic() < deadline, f"no {line!r}: {log.read_text()[-3000:]}"
        time.sleep(0.1)


def test_a_worker_joining_a_running_test_tags_its_logs_with_the_test_run_id_and_decides_nothing(server, tmp_path):
    """Locust hands a late worker the running test before its init event: it must still take the master's run id.

    The late worker starts once the master has started the test with the first one, and the test runs long enough
    for it to start up and join even on a busy machine (a worker that comes after the master has gone waits Locust's
    60 s for a master's heartbeat).
    """
    from grpc_user import LogClient

    port, prefix = str(free_port()), str(tmp_path / "late")
    master = _locust_process("--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", port, "--headless",
                             "--expect-workers", "1", "--enable-rebalancing", "-u", "4", "-r", "4", "-t", "8s",
                             *PACED, "--batch-size", "10", "--host", f"grpc://{server.target}", "--csv",
                             prefix, "--audit-settle", "1", output=tmp_path / "master.log")  # fmt: skip
    processes = [master, _locust_process("--worker", "--master-port", port, output=tmp_path / "first.log")]
    try:
        _wait_for_line(tmp_path / "master.log", "1 workers connected", master, seconds=30)
        processes.append(_locust_process("--worker", "--master-port", port, output=tmp_path / "late.log"))
        _wait_for_line(tmp_path / "master.log", "2 workers connected", master, seconds=30)
        for process in processes:
            process.wait(timeout=60)
    finally:
        for process in processes:
            process.kill()
    master_log, late_log = (tmp_path / "master.log").read_text(), (tmp_path / "late.log").read_text()
    assert "reported as ready. 2 workers connected" in master_log, master_log[-3000:]
    assert "failed to send heartbeat" not in master_log, "a spawn message blocked a worker's hub for seconds"
    run_id = json.loads(Path(f"{prefix}_run.json").read_text())["run_id"]
    with LogClient(server.target) as client:
        by_run_id = client.query_logs(run_id=run_id, limit=1).total_count
    stats = server.stop()
    assert by_run_id == stats["stored"] == stats["acked"] > 0, (by_run_id, stats)
    assert "run id" not in late_log, f"a worker printed the master's line: {late_log}"
    assert master.returncode == 0, master_log[-3000:]
    audit = json.loads(Path(f"{prefix}_audit.json").read_text())
    assert (audit["status"], audit["acked"], audit["persisted"]) == ("ok", stats["acked"], stats["stored"])


def test_forked_workers_die_with_a_master_that_quits_before_they_connected(server, tmp_path):
    """``--processes`` forks workers that connect to ``--master-port`` whatever ``--master-bind-port`` says (Locust's
    own): a new user's master bound to another port waited for them forever, and after its Ctrl-C they connected on
    for minutes (Locust retries 300 s before its init), then joined the next test on that port ("the final counts of
    4 worker(s) never arrived"). Now the two ports must agree, and a master that quits takes its forked workers
    with it even before their init."""
    bound, connects_to = str(free_port()), str(free_port())
    run = run_locust("single", f"grpc://{server.target}", tmp_path, "--processes", "2", "--master-bind-host",
                     "127.0.0.1", "--master-bind-port", bound, "--master-port", connects_to, run_time="5s",
                     timeout=30)  # fmt: skip
    assert run.returncode == 2, run.stderr[-2000:]
    refused = (f"locust: error: --master-bind-port={bound} is not valid; accepted: with --processes, the port its "
               f"forked workers connect to, --master-port ({connects_to}): give both the same port")  # fmt: skip
    assert refused in run.stderr, run.stderr[-2000:]

    def forked_workers() -> list[psutil.Process]:
        found = []
        for process in psutil.process_iter(["cmdline"]):
            with contextlib.suppress(psutil.Error):
                if bound in (process.info["cmdline"] or []):
                    found.append(process)
        return found

    deadline = time.monotonic() + 5
    while forked_workers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not forked_workers(), "forked workers outlived their master"


def test_two_runs_with_processes_at_once_each_keep_their_own_workers_and_audit_exactly(server, tmp_path):
    """A new user ran two ``--processes 2`` tests at once on one machine (Locust's default master port, 5557, on every
    interface): the second's master failed to bind (a traceback), its workers joined the first's master and died (a
    ``KeyError: 'WriteLogUser'`` traceback), and the first run's audit said INCOMPLETE ("final counts of 2 worker(s)
    never arrived"), exit 4. With Locust's default master ports each master now listens on a free loopback port that
    its forked workers are given: both runs end with an exact audit."""
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda name: run_locust("single", f"grpc://{server.target}", tmp_path / name,
                                                     "--processes", "2", *PACED, run_time="4s", timeout=60),
                             ("first", "second")))  # fmt: skip
    for run, name in zip(runs, ("first", "second"), strict=True):
        assert run.returncode == 0 and "Traceback" not in run.stderr, (name, run.stderr[-3000:])
        audit = run.json("audit")
        assert audit["status"] == "ok" and audit["acked"] == audit["persisted"] > 0, (name, audit)


def test_processes_at_locusts_default_master_ports_get_a_free_loopback_port_and_chosen_ones_are_kept():
    """The forked workers' master: Locust's defaults (5557 on every interface) become a free port on 127.0.0.1, ports
    the user gave are kept (on 127.0.0.1); a bind host the user gave, a ``--worker``, and a run without
    ``--processes`` are left as given."""
    defaults = {"master_port": 5557, "master_bind_port": 5557, "master_host": "127.0.0.1", "master_bind_host": "*"}
    options = argparse.Namespace(processes=2, worker=False, **defaults)
    use_free_port_for_forked_workers(options)
    assert options.master_port == options.master_bind_port != 5557 and options.master_bind_host == "127.0.0.1"
    ports = {"master_port": 6000, "master_bind_port": 6000}
    options = argparse.Namespace(**{"processes": 2, "worker": False, **defaults, **ports})
    use_free_port_for_forked_workers(options)
    assert vars(options) == {"processes": 2, "worker": False, **defaults, **ports, "master_bind_host": "127.0.0.1"}
    for changed in ({"processes": None}, {"worker": True}, {"master_bind_host": "0.0.0.0"}):
        options = argparse.Namespace(**{"processes": 2, "worker": False, **defaults, **changed})
        use_free_port_for_forked_workers(options)
        assert vars(options) == {"processes": 2, "worker": False, **defaults, **changed}, changed
