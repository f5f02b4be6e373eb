"""The one validation of a test (``settings_for_test``), in process: every value that would reach gRPC or Locust is
checked against what they accept, and a bad one is one line naming the option, the value and what is accepted.

Whether the command line turns that line into exit 2 is ``test_grpc_user.py``'s (a few subprocesses); the web UI's
``/swarm`` answer is ``test_web_ui.py``'s.
"""

from __future__ import annotations

import argparse

import pytest
from tls_certs import make_ca, make_leaf

from grpc_user.locust.settings.checks import settings_for_test
from grpc_user.locust.settings.values import OptionError

HOST = "grpc://127.0.0.1:50051"


class SingleWriteLike:
    """Stands in for a user class that sends no batches (importing the real ones would load Locust here)."""

    uses_batch_size = False


class BatchLike:
    """Stands in for the batch workload's user class."""

    uses_batch_size = True


def check(host: str = HOST, users: tuple[type, ...] = (BatchLike,), **options):
    return settings_for_test(argparse.Namespace(**options), host, None, users)


@pytest.mark.parametrize(
    ("options", "named", "accepted"),
    [
        # 21.4: values that would reach gRPC and fail every call, or be sent as something else.
        ({"grpc_metadata": ["team=équipe"]}, "--grpc-metadata='team=…'", "printable ASCII"),
        ({"grpc_metadata": ["team=a\tb"]}, "--grpc-metadata='team=…'", "printable ASCII"),
        ({"grpc_metadata": ["blob=" + "x" * 9000]}, "--grpc-metadata='1 pairs, 9036 bytes", "at most 8192 bytes"),
        ({"grpc_authority": "bad|name"}, "--grpc-authority='bad|name'", "host or host:port"),
        ({"grpc_authority": "équipe.internal"}, "--grpc-authority", "ASCII letters"),
        ({"grpc_authority": "logs.internal:99999"}, "--grpc-authority", "host or host:port"),
        ({"grpc_timeout": "1e12"}, "--grpc-timeout='1e12'", "<= 86400"),
        ({"grpc_timeout": "nan"}, "--grpc-timeout='nan'", ">= 0.001"),
        ({"grpc_timeout": "0.0001"}, "--grpc-timeout='0.0001'", ">= 0.001"),
        ({"audit_timeout": "inf"}, "--audit-timeout='inf'", "<= 86400"),
        ({"audit_settle": "1e300"}, "--audit-settle='1e300'", "<= 86400"),
        ({"service_name": "shop\udcff"}, "--service-name", "valid UTF-8"),
        # 21.5: 0 is never "off" by accident; NaN and inf are no numbers.
        ({"arrival_rate": "0"}, "--arrival-rate='0'", "R > 0"),
        ({"arrival_rate": "nan"}, "--arrival-rate='nan'", "R > 0"),
        ({"target_rps": "nan"}, "--target-rps='nan'", "(0: no pacing) >= 0"),
        ({"target_rps": "-inf"}, "--target-rps='-inf'", ">= 0"),
        # 21.6: capacity searches whose answer would be wrong.
        ({"capacity_search": True, "capacity_step": "0.01"}, "--capacity-step='0.01'", ">= 2"),
        ({"capacity_search": True, "capacity_start": "0.001"}, "--capacity-start='0.001'", ">= 1"),
        ({"capacity_search": True, "target_rps": "50"}, "--target-rps='50'", "0 with --capacity-search"),
        ({"capacity_search": True, "capacity_precision": "nan"}, "--capacity-precision='nan'", "a fraction"),
        # 21.9: Locust's own -u and -r, which it would only refuse with a traceback in a greenlet.
        ({"num_users": -1}, "-u/--users=-1", "a whole number >= 0"),
        ({"num_users": 5, "spawn_rate": 0.0}, "-r/--spawn-rate=0.0", "users per second > 0"),
        ({"num_users": 5, "spawn_rate": float("nan")}, "-r/--spawn-rate=nan", "users per second > 0"),
    ],
)
def test_a_value_grpc_or_locust_would_not_take_is_one_line_naming_it(options, named, accepted):
    with pytest.raises(OptionError) as refused:
        check(**options)
    line = str(refused.value)
    assert "\n" not in line and line.startswith(named) and "accepted: " in line and accepted in line, line


def test_a_metadata_value_or_token_is_never_shown_in_the_refusal(monkeypatch):
    with pytest.raises(OptionError) as metadata:
        check(grpc_metadata=["tenant=sécret-42"])
    monkeypatch.setenv("SHOP_TOKEN", "tøken-42")
    with pytest.raises(OptionError) as token:
        check(grpc_token_env="SHOP_TOKEN")
    assert "42" not in str(metadata.value) and "42" not in str(token.value)
    assert str(token.value).startswith("--grpc-token-env='SHOP_TOKEN'") and "'ø'" in str(token.value)


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("127.0.0.1", "--host='127.0.0.1' is not valid; accepted: host:port"),
        ("grpc://équipe.internal:50051", "--host='grpc://équipe.internal:50051' is not valid"),
        ("[::zz]:50051", "--host='[::zz]:50051' is not valid"),
        ("grpc://a..b:50051", "--host='grpc://a..b:50051' is not valid"),
    ],
)
def test_a_host_without_a_port_or_with_a_name_grpc_cannot_resolve_is_refused(host, message):
    with pytest.raises(OptionError, match="the port 1-65535") as refused:
        check(host)
    assert str(refused.value).startswith(message)


def test_hosts_in_the_documented_forms_pass():
    for host in ("127.0.0.1:50051", "grpc://logs-1.internal:9000", "grpcs://logs.example.:443", "[::1]:7000",
                 "my_service.ns.svc:50051"):  # fmt: skip
        assert check(host).grpc_timeout == 5.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pki")
    ca = make_ca(folder, "ca")
    return {"ca": ca[0], "one": make_leaf(folder, "one", ca, dns=["localhost"], ips=[]),
            "two": make_leaf(folder, "two", ca, dns=["localhost"], ips=[])}  # fmt: skip


def test_tls_files_are_loaded_as_grpc_would_load_them(pki, tmp_path):
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(OptionError, match=r"^--grpc-ca='.*ca.pem' is not valid; accepted: a PEM file of CA"):
        check("grpcs://127.0.0.1:50051", grpc_ca=str(garbage))
    with pytest.raises(OptionError, match="whose private key is the unencrypted PEM --grpc-key"):
        check("grpcs://127.0.0.1:50051", grpc_cert=pki["one"].cert, grpc_key=pki["two"].key)
    with pytest.raises(OptionError, match=r"with a grpcs:// --host only: grpc://127.0.0.1:50051 is plaintext"):
        check("grpc://127.0.0.1:50051", grpc_ca=pki["ca"].cert)
    settings = check("grpcs://127.0.0.1:50051", grpc_ca=pki["ca"].cert, grpc_cert=pki["one"].cert,
                     grpc_key=pki["one"].key)  # fmt: skip
    assert settings.security.cert == pki["one"].cert


def test_batch_sizes_are_refused_for_a_workload_that_sends_no_batches():
    with pytest.raises(OptionError, match=r"^--batch-sizes='10,100' is not valid; accepted: a workload that sends "
                                          r"--batch-size batches .* SingleWriteLike sends none"):  # fmt: skip
        check(users=(SingleWriteLike,), capacity_search=True, batch_sizes="10,100")
    assert check(users=(BatchLike,), capacity_search=True, batch_sizes="10,100").capacity.batch_sizes == (10, 100)


def test_the_defaults_and_documented_offs_still_pass():
    settings = check(arrival_rate="", target_rps="0", max_requests="0", num_users=0, spawn_rate=1.0)
    assert settings.arrival_rate is None and settings.target_rps == 0 and settings.max_requests == 0
    searching = check(capacity_search=True, capacity_step="3", capacity_start="1")
    assert searching.capacity.step_seconds == 3 and searching.capacity.start == 1


@pytest.mark.parametrize(
    ("options", "named", "accepted"),
    [
        # Issue 25: the SLO given is named, not the poll interval left at its default.
        ({"slo_visibility_p95_ms": "0.001"}, "--slo-visibility-p95-ms='0.001'", "at least 200 ms"),
        ({"slo_visibility_p95_ms": "150"}, "--slo-visibility-p95-ms='150'", "at least 20 ms with --freshness-poll"),
        # Below twice the shortest interval, no interval allows it: the SLO is named, with what it accepts.
        (
            {"slo_visibility_p95_ms": "5", "freshness_poll_interval": "0.01"},
            "--slo-visibility-p95-ms='5'",
            "at least 20 ms",
        ),
        # Both given, the SLO possible: the interval is the one to lower.
        (
            {"slo_visibility_p95_ms": "100", "freshness_poll_interval": "0.2"},
            "--freshness-poll-interval='0.2'",
            "at most half of --slo-visibility-p95-ms (100 ms)",
        ),
    ],
)
def test_a_freshness_slo_below_twice_the_poll_interval_names_the_option_given(options, named, accepted):
    with pytest.raises(OptionError) as refused:
        check(capacity_search=True, **options)
    line = str(refused.value)
    assert "\n" not in line and line.startswith(named) and accepted in line, line
