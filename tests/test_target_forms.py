"""grpc's own target forms are accepted as they are (its resolvers and load balancing do the work); a malformed one
is one ValueError naming the value and what is accepted."""

from __future__ import annotations

import pytest

from grpc_user import parse_target
from grpc_user.channels import channel_options, service_config
from grpc_user.security import Security


@pytest.mark.parametrize(
    ("text", "address", "tls", "tls_name"),
    [
        ("dns:///logs.example:50051", "dns:///logs.example:50051", False, "logs.example"),
        ("dns://10.0.0.2:53/logs.example:443", "dns://10.0.0.2:53/logs.example:443", False, "logs.example"),
        ("dns:logs.example:50051", "dns:logs.example:50051", False, "logs.example"),
        ("ipv4:127.0.0.1:5001,127.0.0.1:5002", "ipv4:127.0.0.1:5001,127.0.0.1:5002", False, "127.0.0.1"),
        ("ipv6:[::1]:5001,[::1]:5002", "ipv6:[::1]:5001,[::1]:5002", False, "::1"),
        ("unix:/run/logs.sock", "unix:/run/logs.sock", False, "localhost"),
        ("unix:///run/logs.sock", "unix:///run/logs.sock", False, "localhost"),
        ("unix:relative.sock", "unix:relative.sock", False, "localhost"),
        ("grpcs+dns:///logs.example:443", "dns:///logs.example:443", True, "logs.example"),
        ("grpcs+ipv4:127.0.0.1:5001,127.0.0.1:5002", "ipv4:127.0.0.1:5001,127.0.0.1:5002", True, "127.0.0.1"),
    ],
)
def test_grpc_target_forms_go_to_grpc_as_they_are(text, address, tls, tls_name):
    target = parse_target(text)
    assert (target.address, target.tls, target.tls_name) == (address, tls, tls_name)
    assert str(parse_target(str(target))) == str(target)


@pytest.mark.parametrize(
    "bad",
    ["dns:///logs.example", "dns:///:50051", "dns:///h:0", "dns:///h:70000", "ipv4:127.0.0.1", "ipv4:1.2.3:4",
     "ipv4:[::1]:5", "ipv4:127.0.0.1:1,", "ipv6:::1:5", "ipv6:[::1]", "ipv6:[127.0.0.1]:5", "unix:", "unix://x",
     "unix: /x", "grpcs+http://h:1", "grpcs+", "dns:///a b:1", "dns://8.8.8.8/logs.example:443", "dns://a b:53/h:1"],
)  # fmt: skip
def test_malformed_grpc_forms_raise_naming_the_value_and_what_is_accepted(bad):
    with pytest.raises(ValueError, match="accepted") as raised:
        parse_target(bad)
    assert "\n" not in str(raised.value)


def test_an_address_list_names_its_peers_as_grpc_does():
    assert parse_target("ipv4:127.0.0.1:1,127.0.0.2:2").listed_peers == ("ipv4:127.0.0.1:1", "ipv4:127.0.0.2:2")
    assert parse_target("ipv6:[::1]:1").listed_peers == ("ipv6:[::1]:1",)
    assert parse_target("dns:///h:1").listed_peers == ()
    assert parse_target("h:1").listed_peers == ()


def test_an_address_list_over_tls_checks_the_certificate_against_its_first_host():
    options = dict(channel_options(Security(), parse_target("grpcs+ipv4:127.0.0.1:1,127.0.0.1:2")))
    assert options["grpc.ssl_target_name_override"] == "127.0.0.1"
    assert options["grpc.default_authority"] == "127.0.0.1:1"
    named = dict(channel_options(Security(authority="logs.example"), parse_target("grpcs+ipv4:127.0.0.1:1")))
    assert named["grpc.ssl_target_name_override"] == "logs.example"


def test_load_balancing_goes_through_grpcs_service_config():
    assert service_config("round_robin") == '{"loadBalancingConfig": [{"round_robin": {}}]}'
    with pytest.raises(ValueError, match="accepted: pick_first, round_robin"):
        service_config("least_request")
