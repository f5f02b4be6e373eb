"""write_log(message, **kwargs): which keywords become LogEntry fields and how metadata is encoded."""

import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest

from grpc_user import build_log_entry
from grpc_user.entries import entry_from_item, utc_now_rfc3339
from grpc_user.pb import log_service_pb2 as pb


@pytest.mark.parametrize(
    ("kwargs", "fields", "metadata"),
    [
        ({}, {"service_name": "", "trace_id": "", "span_id": "", "level": pb.INFO}, {}),
        (
            {"service_name": "svc", "level": "warn", "trace_id": "t-1", "span_id": "s-1"},
            {"service_name": "svc", "level": pb.WARN, "trace_id": "t-1", "span_id": "s-1"},
            {},
        ),
        ({"adv_id": 1234567, "plan_id": 12345}, {}, {"adv_id": "1234567", "plan_id": "12345"}),
        ({"ratio": 0.85, "ok": True, "missing": None}, {}, {"ratio": "0.85", "ok": "true", "missing": "null"}),
        ({"custom_metrics": {"cpu_usage": 0.85}}, {}, {"custom_metrics": '{"cpu_usage":0.85}'}),
        ({"tags": ["a", "b"], "pair": (1, 2)}, {}, {"tags": '["a","b"]', "pair": "[1,2]"}),
        ({"user": "用户", "emoji": "🚀"}, {}, {"user": "用户", "emoji": "🚀"}),
        ({"nested": {"k": ["ü", {"x": None}]}}, {}, {"nested": '{"k":["ü",{"x":null}]}'}),
        ({"id": "my-id", "message_type": "x"}, {"id": ""}, {"id": "my-id", "message_type": "x"}),
        ({"when": dt.date(2024, 8, 30)}, {}, {"when": "2024-08-30"}),
        ({"amount": Decimal("1.50"), "uid": uuid.UUID(int=1)}, {}, {"amount": "1.50", "uid": str(uuid.UUID(int=1))}),
    ],
)
def test_keywords_split_into_fields_and_string_metadata(kwargs, fields, metadata):
    entry = build_log_entry("hello", **kwargs)
    assert entry.message == "hello"
    for name, value in fields.items():
        assert getattr(entry, name) == value
    assert dict(entry.metadata) == metadata


def test_nested_metadata_is_json_not_python_repr():
    entry = build_log_entry("m", payload={"a": [1, True, None]})
    assert json.loads(entry.metadata["payload"]) == {"a": [1, True, None]}
    assert "True" not in entry.metadata["payload"]


def test_empty_and_unicode_messages_are_kept():
    assert build_log_entry("").message == ""
    assert build_log_entry("日志 ✓").message == "日志 ✓"


def test_timestamp_defaults_to_now_in_utc_rfc3339():
    before = dt.datetime.now(dt.UTC)
    stamp = dt.datetime.fromisoformat(build_log_entry("m").timestamp)
    after = dt.datetime.now(dt.UTC)
    assert stamp.utcoffset() == dt.timedelta(0)
    assert before - dt.timedelta(milliseconds=1) <= stamp <= after


def test_given_timestamp_is_kept_and_naive_datetimes_are_utc():
    assert build_log_entry("m", timestamp="2024-08-30T10:30:45Z").timestamp == "2024-08-30T10:30:45Z"
    naive = dt.datetime(2024, 8, 30, 10, 30, 45)
    assert build_log_entry("m", timestamp=naive).timestamp == "2024-08-30T10:30:45+00:00"


def test_rfc3339_clock_has_microseconds_and_utc_offset():
    text = utc_now_rfc3339()
    assert dt.datetime.fromisoformat(text).tzinfo is not None
    assert text.endswith("+00:00") and len(text.split(".")[1]) == len("123456+00:00")


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: build_log_entry(42), "message: expected str, got int"),
        (lambda: build_log_entry("m", service_name=5), "service_name: expected str"),
        (lambda: build_log_entry("m", blob=object()), "metadata 'blob': cannot encode a value of type object"),
        (lambda: build_log_entry("m", bad={"k": object()}), "metadata 'bad'"),
        (lambda: build_log_entry("m", timestamp=1.5), "timestamp: expected an RFC 3339 str or a datetime"),
    ],
)
def test_misuse_raises_type_error_naming_the_value(call, error):
    with pytest.raises(TypeError, match=error):
        call()


def test_batch_items_are_dicts_with_message_or_ready_entries():
    ready = pb.LogEntry(message="ready")
    assert entry_from_item(ready) is ready
    assert entry_from_item({"message": "m", "adv_id": 1}).metadata["adv_id"] == "1"
    with pytest.raises(ValueError, match="without 'message'"):
        entry_from_item({"adv_id": 1})
