"""Every file of a run: its name, and its columns (CSV) or the shape of its fields (JSON, as JSON Schema).

The suite's writers (``grpc_user.run_files.csv_files``, ``grpc_user.run_files.json_files``) write these columns
in this order, and ``reports`` reads and checks the files against the same declarations: one schema for both
sides. Locust's own ``--csv`` files are declared too (the columns reports read of them); Locust writes them.

A reader requires ``CsvFile.required`` (by default every column), so that a run written before a column was added
still reads; ``numbers`` must hold a number on every row, ``loose_numbers`` a number or ``N/A``; every other column
but the ``text`` ones is checked finite where it holds a number. JSON shapes declare every field a report reads,
with the type it must have; fields no report reads are left free, and ``null`` is accepted where the suite writes
one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from grpc_user import calls
from grpc_user.histograms import AGGREGATED
from grpc_user.results import OK

__all__ = [
    "ACTIONS",
    "AGGREGATED",
    "ARRIVALS",
    "ARRIVALS_HISTORY",
    "AUDIT",
    "CAPACITY",
    "CSV_FILES",
    "DROPPED_CAUSE_PREFIX",
    "EXCEPTIONS",
    "FAILURES",
    "FRESHNESS",
    "FRESHNESS_HISTORY",
    "FRESHNESS_INFO",
    "HELD_BACK_MEANS",
    "HISTOGRAMS",
    "JSON_FILES",
    "LATENCY",
    "LOGS",
    "LOGS_HISTORY",
    "OK",
    "PEERS",
    "PEERS_HISTORY",
    "PERCENTILES",
    "PHASE_ROW_PREFIX",
    "REQUEST_TYPE",
    "RUN_INFO",
    "SERVICE_TIME",
    "STATS",
    "STATS_HISTORY",
    "WIDER_THAN_ASKED",
    "AGED_GAP_SHARE",
    "CsvFile",
    "JsonFile",
]


@dataclass(frozen=True)
class CsvFile:
    """One CSV file of a run: ``<prefix><suffix>`` with ``columns`` in this order (``kind`` names it in messages)."""

    kind: str
    suffix: str
    columns: tuple[str, ...]
    numbers: tuple[str, ...] = ()
    loose_numbers: tuple[str, ...] = ()
    text: frozenset[str] = frozenset({"Name"})
    required_columns: tuple[str, ...] | None = None

    @property
    def required(self) -> tuple[str, ...]:
        """The columns a reader cannot do without (every column unless declared otherwise)."""
        return self.columns if self.required_columns is None else self.required_columns

    def path(self, prefix: str | os.PathLike[str]) -> str:
        """``<prefix><suffix>``: ``path("runs/x/mixed")`` is ``runs/x/mixed_logs.csv`` for LOGS."""
        return f"{os.fspath(prefix)}{self.suffix}"


@dataclass(frozen=True)
class JsonFile:
    """One JSON file of a run: ``<prefix><name>``, or ``name`` in the prefix's folder when not ``per_prefix``
    (``capacity.json``); ``shape`` is the JSON Schema of the fields readers use."""

    kind: str
    name: str
    shape: dict[str, Any]
    per_prefix: bool = True

    def path(self, prefix: str | os.PathLike[str]) -> str:
        """Where the file of the run with this ``--csv`` prefix is."""
        prefix = os.fspath(prefix)
        return f"{prefix}{self.name}" if self.per_prefix else os.path.join(os.path.dirname(prefix), self.name)


PERCENTILES = ("50%", "90%", "95%", "99%")
REQUEST_TYPE = calls.REQUEST_TYPE
"""The Type of the suite's rows: Locust's ``request_type`` of every call the suite makes. The last row of a file
with one row per request name is named ``AGGREGATED`` (as in Locust's files); ``OK`` is a successful call's
outcome (``_latency.csv``'s Outcome)."""

# --- Locust's own --csv files (Locust writes them; the columns the reports read) -----------------------------------

STATS = CsvFile(
    "stats",
    "_stats.csv",
    ("Type", "Name", "Request Count", "Failure Count", "Requests/s", "Max Response Time", "Average Content Size",
     "Average Response Time", *PERCENTILES, "100%"),
    numbers=("Request Count", "Failure Count", "Requests/s"),
    # Locust writes 'N/A' percentiles for a name without requests.
    loose_numbers=("Max Response Time", "Average Content Size", "Average Response Time", *PERCENTILES, "100%"),
    text=frozenset({"Type", "Name"}),
)  # fmt: skip
STATS_HISTORY = CsvFile(
    "stats history",
    "_stats_history.csv",
    ("Timestamp", "User Count", "Name", "Total Request Count", "Total Failure Count", "50%", "95%", "99%"),
    numbers=("Timestamp", "User Count", "Total Request Count", "Total Failure Count"),
    loose_numbers=("50%", "95%", "99%"),  # 'N/A' in the first row
    text=frozenset({"Type", "Name"}),
)
FAILURES = CsvFile(
    "failures",
    "_failures.csv",
    ("Name", "Error", "Occurrences"),
    numbers=("Occurrences",),
    text=frozenset({"Method", "Name", "Error"}),
)
EXCEPTIONS = CsvFile(
    "exceptions",
    "_exceptions.csv",
    ("Count", "Message"),
    numbers=("Count",),
    text=frozenset({"Message", "Traceback", "Nodes"}),
)

# --- the suite's CSV files ---------------------------------------------------------------------------------------

LOGS = CsvFile(
    "logs",
    "_logs.csv",
    ("Type", "Name", "Requests", "Logs Sent", "Logs Acked", "Logs Rejected", "Logs In Doubt"),
    numbers=("Requests", "Logs Sent", "Logs Acked", "Logs Rejected", "Logs In Doubt"),
    text=frozenset({"Type", "Name"}),
    required_columns=("Name", "Requests", "Logs Sent", "Logs Acked", "Logs Rejected"),
)
"""One row per request name (Type REQUEST_TYPE), then an ``Aggregated`` row (empty Type)."""
LOGS_HISTORY = CsvFile(
    "logs history",
    "_logs_history.csv",
    ("Timestamp", "User Count", "Type", "Name", "Logs Sent", "Logs Acked"),
    numbers=("Timestamp", "User Count", "Logs Sent", "Logs Acked"),
    text=frozenset({"Type", "Name"}),
    required_columns=("Timestamp", "User Count", "Name", "Logs Sent", "Logs Acked"),
)
"""Cumulative counts every stats interval (Unix seconds): one row per request name and an ``Aggregated`` row."""
LATENCY = CsvFile(
    "latency",
    "_latency.csv",
    ("Name", "Outcome", "Count", "Average (ms)", *PERCENTILES, "Max (ms)", "Min (ms)"),
    numbers=("Count", "Average (ms)", *PERCENTILES, "Max (ms)"),
    text=frozenset({"Name", "Outcome"}),
    required_columns=("Name", "Outcome", "Count", "Average (ms)", *PERCENTILES, "Max (ms)"),
)
"""ms with µs decimals, from the HDR histograms: one row per (name, outcome), then ``Aggregated`` per outcome."""
SERVICE_TIME = CsvFile(
    "service time",
    "_service_time.csv",
    LATENCY.columns,
    numbers=LATENCY.numbers,
    text=LATENCY.text,
    required_columns=LATENCY.required_columns,
)
"""As LATENCY, from sending each call to its answer (open model only: latency counts from the scheduled start)."""
DROPPED_CAUSE_PREFIX = "Dropped "
ARRIVALS = CsvFile("arrivals", "_arrivals.csv", ("Offered", "Made", "Dropped"), numbers=("Offered", "Made", "Dropped"))
"""One row of the test's open-model arrivals, then one ``Dropped <CAUSE>`` column per cause of a drop."""
ARRIVALS_HISTORY = CsvFile(
    "arrivals history",
    "_arrivals_history.csv",
    ("Timestamp", "User Count", "Offered", "Made", "Dropped"),
    numbers=("Timestamp", "User Count", "Offered", "Made", "Dropped"),
)
"""Cumulative arrivals every stats interval."""
FRESHNESS = CsvFile(
    "freshness",
    "_freshness.csv",
    ("Name", "Samples", "Visible", "Never Visible", "50%", "95%", "99%", "Max (ms)", "Poll Interval (ms)", "Unknown",
     "Largest Poll Gap (ms)", "No Sample Because"),
    numbers=("Samples", "Visible", "Never Visible", "Poll Interval (ms)", "Unknown"),
    # Empty when no sample of the row became visible: no figure without a sample.
    loose_numbers=("50%", "95%", "99%", "Max (ms)", "Largest Poll Gap (ms)"),
    text=frozenset({"Name", "No Sample Because"}),
    required_columns=("Name", "Samples", "Visible", "Never Visible", "50%", "95%", "99%", "Max (ms)",
                      "Poll Interval (ms)"),
)  # fmt: skip
"""Visibility latency in ms per request name and an ``Aggregated`` row (50%..Max empty for a row without a visible
sample); the samples unknown (not looked for long enough) and the largest gap between the polls that saw a sample
of the row (its own figures' measured error bound, empty without a visible sample; ``Poll Interval (ms)`` is the
run's setting, the shortest gap asked for). With
``--action``, after the ``Aggregated`` row, one row per phase named ``phase N``: the logs sent in that phase, a row
for every phase that ran; one without a sample says why in ``No Sample Because`` (empty in every other row)."""
PHASE_ROW_PREFIX = "phase "
FRESHNESS_HISTORY = CsvFile(
    "freshness history",
    "_freshness_history.csv",
    ("Timestamp", "Name", "Visible", "50%", "95%", "99%", "Max (ms)"),
    numbers=("Timestamp", "Visible", "50%", "95%", "99%", "Max (ms)"),
)
"""The sampled logs found visible, per second of their acknowledgement (``Timestamp``: that epoch second, not the
one they were found in; runs before 2026-12-01 were keyed by the second found) and request name: the visibility of
the logs acknowledged then."""
PEERS = CsvFile("peers", "_peers.csv", ("Peer", "Requests"), numbers=("Requests",), text=frozenset({"Peer"}))
"""Calls per server address, most first (a listed server that no call reached: 0)."""
PEERS_HISTORY = CsvFile(
    "peers history",
    "_peers_history.csv",
    ("Timestamp", "Peer", "Requests"),
    numbers=("Timestamp", "Requests"),
    text=frozenset({"Peer"}),
)
"""Cumulative calls per server whenever they changed."""
ACTIONS = CsvFile(
    "actions",
    "_actions.csv",
    ("Phase", "At (s)", "Command", "Status", "Exit Code", "Started (unix s)", "Ended (unix s)", "Duration (s)",
     "Output Lines", "Output", "Detail", "Output Bytes"),
    numbers=("Phase", "At (s)"),
    text=frozenset({"Command", "Status", "Output", "Detail"}),
    required_columns=("Phase", "At (s)", "Command", "Status", "Exit Code", "Started (unix s)", "Duration (s)"),
)  # fmt: skip
"""One row per ``--action``: its phase, time, outcome and the first lines of its output."""

# --- the suite's JSON files --------------------------------------------------------------------------------------

_TEXT = {"type": "string"}
_NUMBER = {"type": "number"}
_COUNT = {"type": "integer", "minimum": 0}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    return {**schema, "type": [*kinds, "null"]}


def _record(fields: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": fields, "required": list(required)}


_PHASE = _record(
    {"phase": _COUNT, "action": _nullable(_TEXT), "acked": _COUNT, "in_doubt": _COUNT, "persisted": _COUNT,
     "lost": _COUNT, "lost_min": _COUNT, "lost_max": _nullable(_COUNT), "status": _TEXT,
     "sentence": _nullable(_TEXT)},
    required=("phase", "acked", "persisted", "lost", "status"),
)  # fmt: skip
_AUDIT = _record(
    {"run_id": _nullable(_TEXT), "acked": _COUNT, "persisted": _COUNT, "lost": _COUNT, "unexpected": _COUNT,
     "status": _TEXT, "detail": _nullable(_TEXT), "in_doubt": _COUNT, "lost_min": _COUNT,
     "lost_max": _nullable(_COUNT), "settle_seconds": _nullable(_NUMBER), "barriers": _COUNT,
     "service_stored": _nullable(_COUNT),
     "phases": {"type": "array", "items": _PHASE},
     "unreported_workers": {"type": "array", "items": _TEXT},
     "barriers_by_peer": {"type": "array", "items": _record({"peer": _TEXT, "written": _COUNT, "stored": _COUNT,
                                                             "refused": _TEXT, "reached": {"type": "boolean"}},
                                                            ("peer", "written", "stored"))}},
    required=("acked", "persisted", "lost", "unexpected", "status"),
)  # fmt: skip
AUDIT = JsonFile("audit", "_audit.json", _AUDIT)
"""The delivery audit's result (``AuditResult.as_dict()``), with ``phases`` in a run with actions."""
_OPTIONS = _record({"capacity": {"type": ["object", "null"]}, "arrival_rate": {"type": ["string", "number", "null"]},
                    "target_rps": _nullable(_NUMBER)})  # fmt: skip
RUN_INFO = JsonFile(
    "run",
    "_run.json",
    _record(
        {"workload": _nullable(_TEXT), "locustfile": _nullable(_TEXT), "users": _nullable(_COUNT),
         "spawn_rate": _nullable(_NUMBER), "run_time": _nullable({"type": ["number", "string"]}),
         "target": _nullable(_TEXT), "run_id": _nullable(_TEXT), "started_at": _nullable(_TEXT),
         "stopped_at": _nullable(_TEXT), "duration_seconds": _nullable(_NUMBER), "workers": _nullable(_COUNT),
         "audit": _nullable(_AUDIT), "options": _nullable(_OPTIONS)}
    ),
)  # fmt: skip
"""The run's parameters (no secrets), its options, and the audit once it is known."""
_CAUSE = _record({"status": _TEXT, "words": _TEXT}, required=("status", "words"))
_STEP_FIELDS = {
    "offered_rps": _NUMBER, "achieved_rps": _NUMBER, "offered_logs_per_second": _NUMBER,
    "acked_logs_per_second": _NUMBER, "stored_logs_per_second": _nullable(_NUMBER), "p50_ms": _NUMBER,
    "p95_ms": _NUMBER, "p99_ms": _NUMBER, "failures": {"type": "object", "additionalProperties": _COUNT},
    "dropped": _COUNT, "backlog_start": _nullable(_NUMBER), "backlog_end": _nullable(_NUMBER),
    "good": {"type": "boolean"}, "broken_by": {"type": "array", "items": _record({"status": _TEXT}, ("status",))},
}  # fmt: skip
CAPACITY = JsonFile(
    "capacity",
    "capacity.json",
    _record(
        {"answer": _TEXT, "max_sustainable_rps": _NUMBER, "max_sustainable_logs_per_second": _NUMBER,
         "breaking_cause": _CAUSE,
         "slo": _record({"p95_ms": _NUMBER, "failure_rate": _NUMBER, "visibility_p95_ms": _NUMBER},
                        ("p95_ms", "failure_rate")),
         "steps": {"type": "array", "items": _record(_STEP_FIELDS, tuple(_STEP_FIELDS))},
         "batch_sizes": {"type": "array", "items": _record(
             {"batch_size": _nullable(_COUNT), "max_sustainable_rps": _NUMBER,
              "max_sustainable_logs_per_second": _NUMBER, "breaking_cause": _CAUSE},
             ("batch_size", "max_sustainable_rps", "max_sustainable_logs_per_second", "breaking_cause"))}},
        required=("answer", "max_sustainable_rps", "max_sustainable_logs_per_second", "breaking_cause", "slo",
                  "steps"),
    ),
    per_prefix=False,
)  # fmt: skip
"""A capacity search's answer, its cause and every step, in the run's folder beside the --csv files."""
_NEVER_VISIBLE = _record({"name": _TEXT, "probe": _TEXT, "sample": _COUNT, "acked_at": _TEXT},
                         ("name", "probe", "sample", "acked_at"))  # fmt: skip
FRESHNESS_INFO = JsonFile(
    "freshness info",
    "_freshness.json",
    _record({"max_poll_gap_ms": _nullable(_NUMBER), "slowest_query_ms": _nullable(_NUMBER),
             "poll_lateness_ms": _nullable(_NUMBER), "asked": _COUNT,
             "asked_unsampled": _COUNT, "sampling_limited": {"type": "boolean"},
             "sampling_reserved_at_s": _nullable(_NUMBER), "probe_queries": _COUNT,
             "held_released": {"type": "boolean"}, "flush_cycle_ms": _nullable(_NUMBER),
             "precise_window_at_s": _nullable(_NUMBER), "unacknowledged": _COUNT,
             "failing_since_s": _nullable(_NUMBER), "failing_status": _TEXT,
             "last_acked_s": _NUMBER, "acked_from_s": _nullable(_NUMBER),
             "acked_to_s": _nullable(_NUMBER), "test_s": _nullable(_NUMBER), "lost_pending": _COUNT,
             "lost_workers": {"type": "array", "items": _record({"worker": _TEXT, "last_report_s": _NUMBER},
                                                                ("worker", "last_report_s"))},
             "never_visible_samples": {"type": "array", "items": _NEVER_VISIBLE},
             "unknown_samples": {"type": "array", "items": _NEVER_VISIBLE}, "unknown_because": _TEXT,
             "never_visible_because": _TEXT, "histograms": {"type": "array"}}),
)  # fmt: skip
"""The freshness figures (as ``_freshness.csv``), the samples never visible and unknown, and why
(``never_visible_because``, '' when the audit settled; ``unknown_because``), the probe's own QueryLog calls (and the
slowest of them, ``slowest_query_ms``), the samples the sample rate asked for, those of them while the probe did not
sample, and whether the query share took fewer (``asked``, ``asked_unsampled``,
``sampling_limited``; absent from runs before them) or its reserve for the polls after the stop stopped sampling
(``sampling_reserved_at_s``: seconds into the test), the samples taken and never counted (``held_back``: what
``HELD_BACK_MEANS`` says), whether the figures are a coarse window's counted as no window at the poll interval counted
any (``held_released``, with the store's flush cycle as learnt, ``flush_cycle_ms``: a whole number of flush periods,
the period itself when it is longer than the learning's polls' gap, and when the share was expected to
pay for a window at the poll interval, ``precise_window_at_s``), the samples due on calls the service did not
acknowledge (``unacknowledged``) and from when (seconds into the test) none was, after the last acknowledged one,
with the last one's cause (``failing_since_s``, ``last_acked_s``, ``failing_status``), the part of the run the
figures cover (``acked_from_s`` to ``acked_to_s``: the first and last counted sample found's acknowledgement, s into
a test of ``test_s``), the workers lost before their final report and the samples they still looked for
(``lost_workers``, ``lost_pending``), and each name's HDR histogram."""
# What ``held_back`` counts, in the words of the summary line and the report: "(and 4 <these words>)".
HELD_BACK_MEANS = "taken to learn the store's pace or in a coarser window, not counted"
# A ``max_poll_gap_ms`` this many times ``poll_interval_ms``, with ``sampling_limited``, is the query share's doing (a
# busy client polls late by milliseconds, not by multiples): the summary line and the report then say what to raise.
WIDER_THAN_ASKED = 2.0
# A freshness sample past the polls its window was funded for, and an overdue one, is looked for again this many times
# its age after the last look: its figure is then late by at most this fraction of it (the probe's pace, and the
# words that explain a bound that wide).
AGED_GAP_SHARE = 0.1
HISTOGRAMS = JsonFile(
    "histograms",
    "_histograms.json",
    _record({"metrics": {"type": "object", "additionalProperties": {"type": "array"}}}, ("metrics",)),
)
"""Every HDR histogram of the run by metric (``latency``, ``service_time``), in HdrHistogram's standard encoding."""

CSV_FILES = (LOGS, LOGS_HISTORY, LATENCY, SERVICE_TIME, ARRIVALS, ARRIVALS_HISTORY, FRESHNESS, FRESHNESS_HISTORY,
             PEERS, PEERS_HISTORY, ACTIONS)  # fmt: skip
"""The CSV files the suite writes (Locust's own: STATS, STATS_HISTORY, FAILURES, EXCEPTIONS)."""
JSON_FILES = (RUN_INFO, AUDIT, CAPACITY, FRESHNESS_INFO, HISTOGRAMS)
"""The JSON files the suite writes."""
