"""Locust's distributed mode: a real master with two real workers (``--processes 2``), every figure exact."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from locust_runs import distributed_args, run_locust

from reference_server.process import start_server_process

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def server():
    running = start_server_process("--flush-period", "0.1", "--queue-size", "100000")
    yield running
    running.kill()


def test_master_and_two_workers_add_up_calls_logs_and_audit_exactly(server, tmp_path):
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
    report = subprocess.run([sys.executable, "-m", "reports", run.prefix, "--json", "--max-lost", "0"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert report.returncode == 0, report.stderr
    summary = json.loads(report.stdout)
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
    expected_workers = int(master["args"][master["args"].index("--expect-workers") + 1])
    assert by_name[("Deployment", "locust-worker")]["spec"]["replicas"] == expected_workers
