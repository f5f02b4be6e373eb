"""The shapes of the JSON files the reports read (``_run.json``, ``_audit.json``, ``capacity.json``,
``_freshness.json``), as JSON Schema.

Every field a report reads is declared with the type it must have, so a hand-edited or foreign file (an audit
status that is no text, a figure that is no number) becomes one line naming the file and the field, never a
traceback. Fields no report reads are left free; ``null`` is accepted where the suite writes one.
"""

from __future__ import annotations

from typing import Any

import jsonschema

TEXT = {"type": "string"}
NUMBER = {"type": "number"}
COUNT = {"type": "integer", "minimum": 0}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    return {**schema, "type": [*kinds, "null"]}


def _record(fields: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": fields, "required": list(required)}


_PHASE = _record(
    {"phase": COUNT, "action": _nullable(TEXT), "acked": COUNT, "in_doubt": COUNT, "persisted": COUNT,
     "lost": COUNT, "lost_min": COUNT, "lost_max": COUNT, "status": TEXT, "sentence": _nullable(TEXT)},
    required=("phase", "acked", "persisted", "lost", "status"),
)  # fmt: skip
AUDIT = _record(
    {"run_id": _nullable(TEXT), "acked": COUNT, "persisted": COUNT, "lost": COUNT, "unexpected": COUNT,
     "status": TEXT, "detail": _nullable(TEXT), "in_doubt": COUNT, "lost_min": COUNT, "lost_max": COUNT,
     "settle_seconds": _nullable(NUMBER), "phases": {"type": "array", "items": _PHASE}},
    required=("acked", "persisted", "lost", "unexpected", "status"),
)  # fmt: skip
_OPTIONS = _record({"capacity": {"type": ["object", "null"]}, "arrival_rate": {"type": ["string", "number", "null"]},
                    "target_rps": _nullable(NUMBER)})  # fmt: skip
RUN_INFO = _record(
    {"workload": _nullable(TEXT), "locustfile": _nullable(TEXT), "users": _nullable(COUNT),
     "spawn_rate": _nullable(NUMBER), "run_time": _nullable({"type": ["number", "string"]}),
     "target": _nullable(TEXT), "run_id": _nullable(TEXT), "started_at": _nullable(TEXT),
     "stopped_at": _nullable(TEXT), "duration_seconds": _nullable(NUMBER), "workers": _nullable(COUNT),
     "audit": _nullable(AUDIT), "options": _nullable(_OPTIONS)}
)  # fmt: skip
_CAUSE = _record({"status": TEXT, "words": TEXT}, required=("status", "words"))
_STEP_FIELDS = {
    "offered_rps": NUMBER, "achieved_rps": NUMBER, "offered_logs_per_second": NUMBER,
    "acked_logs_per_second": NUMBER, "stored_logs_per_second": _nullable(NUMBER), "p50_ms": NUMBER,
    "p95_ms": NUMBER, "p99_ms": NUMBER, "failures": {"type": "object", "additionalProperties": COUNT},
    "dropped": COUNT, "backlog_start": _nullable(NUMBER), "backlog_end": _nullable(NUMBER),
    "good": {"type": "boolean"}, "broken_by": {"type": "array", "items": _record({"status": TEXT}, ("status",))},
}  # fmt: skip
_NEVER_VISIBLE = _record({"name": TEXT, "probe": TEXT, "sample": COUNT, "acked_at": TEXT},
                         ("name", "probe", "sample", "acked_at"))  # fmt: skip
FRESHNESS = _record({"max_poll_gap_ms": NUMBER, "probe_queries": COUNT,
                     "never_visible_samples": {"type": "array", "items": _NEVER_VISIBLE}})  # fmt: skip
CAPACITY = _record(
    {"answer": TEXT, "max_sustainable_rps": NUMBER, "max_sustainable_logs_per_second": NUMBER,
     "breaking_cause": _CAUSE,
     "slo": _record({"p95_ms": NUMBER, "failure_rate": NUMBER, "visibility_p95_ms": NUMBER},
                    ("p95_ms", "failure_rate")),
     "steps": {"type": "array", "items": _record(_STEP_FIELDS, tuple(_STEP_FIELDS))},
     "batch_sizes": {"type": "array", "items": _record(
         {"batch_size": _nullable(COUNT), "max_sustainable_rps": NUMBER,
          "max_sustainable_logs_per_second": NUMBER, "breaking_cause": _CAUSE},
         ("batch_size", "max_sustainable_rps", "max_sustainable_logs_per_second", "breaking_cause"))}},
    required=("answer", "max_sustainable_rps", "max_sustainable_logs_per_second", "breaking_cause", "slo", "steps"),
)  # fmt: skip


def shape_problem(value: Any, schema: dict[str, Any]) -> str:
    """The first field of ``value`` that does not have its declared shape, in words ('' when all do)."""
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(value))
    if error is None:
        return ""
    where = error.json_path.removeprefix("$.").removeprefix("$") or "the file"
    return f"{where}: {error.message}"
