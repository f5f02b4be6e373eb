"""TLS, mutual TLS, authority override, call metadata and bearer token; secrets never written anywhere."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from locust_runs import run_locust
from test_reports import in_process
from tls_certs import make_ca, make_leaf

# Real Locust runs or processes of several seconds each: make test runs them, make test-fast does not.
pytestmark = pytest.mark.slow

TOKEN = "tok-5f3c9a-very-secret"
METADATA_VALUE = "tenant-value-7d1e-secret"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pki")
    ca = make_ca(folder, "test-ca")
    other_ca = make_ca(folder, "other-ca")
    return {
        "ca": ca[0].cert,
        "other_ca": other_ca[0].cert,
        "server": make_leaf(folder, "server", ca, dns=["localhost"], ips=["127.0.0.1"]),
        "named_server": make_leaf(folder, "named-server", ca, dns=["logs.internal"], ips=[]),
        "client": make_leaf(folder, "client", ca, dns=[], ips=[], client=True),
        "stranger": make_leaf(folder, "stranger", other_ca, dns=[], ips=[], client=True),
    }


def test_tls_with_the_right_ca_works(pki, serve, tmp_path):
    server = serve("--tls-cert", pki["server"].cert, "--tls-key", pki["server"].key)
    run = run_locust("single", f"grpcs://{server.target}", tmp_path, "--grpc-ca", pki["ca"], "--max-requests", "50")
    assert run.returncode == 0, run.stderr
    assert run.logs()["WriteLog"]["Logs Acked"] == 50 == server.stop()["stored"]


def test_tls_with_the_wrong_ca_fails_fast_naming_the_target(pki, serve, tmp_path):
    server = serve("--tls-cert", pki["server"].cert, "--tls-key", pki["server"].key)
    run = run_locust("single", f"grpcs://{server.target}", tmp_path, "--grpc-ca", pki["other_ca"], timeout=20)
    assert run.returncode == 1
    assert f"locust: error: target grpcs://{server.target} is not serving the log service: UNAVAILABLE" in run.stderr


def test_plaintext_client_against_a_tls_server_fails_fast(pki, serve, tmp_path):
    server = serve("--tls-cert", pki["server"].cert, "--tls-key", pki["server"].key)
    run = run_locust("single", f"grpc://{server.target}", tmp_path, timeout=20)
    assert run.returncode == 1 and "is not serving the log service" in run.stderr


def test_authority_override_matches_a_certificate_for_another_name(pki, serve, tmp_path):
    server = serve("--tls-cert", pki["named_server"].cert, "--tls-key", pki["named_server"].key)
    run = run_locust("single", f"grpcs://{server.target}", tmp_path, "--grpc-ca", pki["ca"],
                     "--grpc-authority", "logs.internal", "--max-requests", "20")  # fmt: skip
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize(("client", "works"), [("client", True), ("stranger", False), (None, False)])
def test_mutual_tls_accepts_only_clients_signed_by_the_ca(pki, serve, tmp_path, client, works):
    server = serve("--tls-cert", pki["server"].cert, "--tls-key", pki["server"].key,
                     "--tls-client-ca", pki["ca"])  # fmt: skip
    identity = ["--grpc-cert", pki[client].cert, "--grpc-key", pki[client].key] if client else []
    run = run_locust("single", f"grpcs://{server.target}", tmp_path, "--grpc-ca", pki["ca"], *identity,
                     "--max-requests", "20", timeout=30)  # fmt: skip
    assert (run.returncode == 0) is works, run.stderr
    if not works:
        assert "is not serving the log service: UNAVAILABLE" in run.stderr


def test_metadata_and_token_reach_the_server_and_appear_in_no_output(serve, tmp_path):
    server = serve(env={"REFERENCE_AUTH_TOKEN": TOKEN})
    env = {**os.environ, "LOAD_TOKEN": TOKEN}
    run = run_locust("mixed", f"grpc://{server.target}", tmp_path, "--grpc-metadata", f"x-tenant={METADATA_VALUE}",
                     "--grpc-token-env", "LOAD_TOKEN", "--max-requests", "200", "--html", str(tmp_path / "r.html"),
                     env=env)  # fmt: skip
    stats = server.stop()
    assert run.returncode == 0, run.stderr
    calls = sum(stats["calls"].values())
    assert stats["metadata_keys_seen"] == {"authorization": calls, "x-tenant": calls}
    report = in_process(run.prefix, "--json", "--no-charts")
    assert report.returncode == 0, report.stderr
    texts = [path.read_text(errors="replace") for path in Path(tmp_path).iterdir() if path.suffix != ".png"]
    outputs = [run.stdout, run.stderr, report.stdout, report.stderr, *texts]
    assert len(outputs) > 12 and any("report.html" == path.name for path in Path(tmp_path).iterdir())
    for text in outputs:
        assert TOKEN not in text and METADATA_VALUE not in text
    assert run.json("run")["options"]["grpc_metadata_keys"] == ["x-tenant"]


def test_a_missing_token_is_recorded_as_unauthenticated(serve, tmp_path):
    server = serve(env={"REFERENCE_AUTH_TOKEN": TOKEN})
    run = run_locust("single", f"grpc://{server.target}", tmp_path, "--max-requests", "30", "--no-audit")
    assert run.failures() == {"UNAUTHENTICATED: missing or wrong bearer token": 30}
