"""Level parsing fails loudly on typos; targets take host:port, grpc:// and grpcs://, the port required (gRPC's
own default would be 443, not the service's 50051)."""

import pytest

from grpc_user import parse_level, parse_target
from grpc_user.pb import log_service_pb2 as pb


@pytest.mark.parametrize(
    ("given", "expected"),
    [("DEBUG", 0), ("info", 1), ("Warn", 2), (" error ", 3), ("FATAL", 4), (3, 3), (pb.WARN, 2), (0, 0)],
)
def test_levels_accept_names_in_any_case_ints_and_enum_values(given, expected):
    assert parse_level(given) == expected


@pytest.mark.parametrize("bad", ["WARNNING", "", "5", 5, -1, True, None, 2.0])
def test_unknown_level_raises_naming_the_five_levels(bad):
    with pytest.raises(ValueError, match="DEBUG, INFO, WARN, ERROR, FATAL"):
        parse_level(bad)


@pytest.mark.parametrize(
    ("text", "address", "tls"),
    [
        ("127.0.0.1:50051", "127.0.0.1:50051", False),
        ("grpc://localhost:9000", "localhost:9000", False),
        ("grpcs://logs.example:443", "logs.example:443", True),
        ("[::1]:7000", "[::1]:7000", False),
    ],
)
def test_targets_accept_the_documented_forms(text, address, tls):
    target = parse_target(text)
    assert (target.address, target.tls) == (address, tls)


@pytest.mark.parametrize(
    "bad",
    [
        "http://h:1",
        "h:port",
        "h:0",
        "h:70000",
        "",
        "a b:1",
        "grpc://",
        "localhost",
        "équipe:1",
        "[::zz]:1",
        "a..b:1",
        "-a:1",
    ],
)
def test_malformed_targets_raise_naming_the_value_and_the_accepted_forms(bad):
    with pytest.raises(ValueError, match="accepted"):
        parse_target(bad)
