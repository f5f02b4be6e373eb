"""The suite's JSON files, written whole and atomically (a reader never finds half a file), and the histograms
file read back.

Each writer takes the document the plugin built (its fields as ``schema`` declares them) and returns the path.
Raises OSError when a file cannot be written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from grpc_user.histograms import (
    HIGHEST_US,
    LOWEST_US,
    SIGNIFICANT_DIGITS,
    HistogramError,
    LatencyHistograms,
)
from grpc_user.run_files.schema import AUDIT, CAPACITY, FRESHNESS_INFO, HISTOGRAMS, RUN_INFO, JsonFile

__all__ = [
    "ENCODING",
    "read_histograms",
    "write_audit",
    "write_capacity",
    "write_freshness_info",
    "write_histograms",
    "write_run_info",
]

ENCODING = "HdrHistogram V2 compressed, base64 (encodeIntoCompressedByteBuffer)"


def _write(file: JsonFile, prefix: str, document: Any, indent: int = 2, sort_keys: bool = False) -> str:
    path = file.path(prefix)
    partial = f"{path}.partial"
    with open(partial, "w") as handle:
        json.dump(document, handle, indent=indent, sort_keys=sort_keys, default=str)
    os.replace(partial, path)
    return path


def write_run_info(prefix: str, info: Mapping[str, Any]) -> str:
    """``<prefix>_run.json``: the run's parameters, options and (once known) audit; keys sorted."""
    return _write(RUN_INFO, prefix, info, sort_keys=True)


def write_audit(prefix: str, result: Mapping[str, Any], phases: list[dict[str, Any]] | None = None) -> str:
    """``<prefix>_audit.json``: the audit's ``result`` (``AuditResult.as_dict()``), with ``phases`` (the audit of
    each phase of a run with actions) when there are any."""
    return _write(AUDIT, prefix, {**result, **({"phases": phases} if phases else {})})


def write_capacity(prefix: str, result: Mapping[str, Any]) -> str:
    """``capacity.json`` in the folder of the ``--csv`` prefix: the search's answer, its cause and every step."""
    return _write(CAPACITY, prefix, result)


def write_freshness_info(prefix: str, figures: Mapping[str, Any]) -> str:
    """``<prefix>_freshness.json``: every freshness figure (``grpc_user.locust.freshness.files.figures``)."""
    return _write(FRESHNESS_INFO, prefix, figures, sort_keys=True)


def write_histograms(prefix: str, metrics: Mapping[str, LatencyHistograms]) -> str:
    """``<prefix>_histograms.json``: each metric's histograms (e.g. ``{"latency": ..., "service_time": ...}``) in
    HdrHistogram's standard encoding, from which reports recompute any percentile."""
    document = {
        "encoding": ENCODING,
        "unit": "microseconds",
        "lowest_us": LOWEST_US,
        "highest_us": HIGHEST_US,
        "significant_digits": SIGNIFICANT_DIGITS,
        "entries": "[name, outcome, encoded histogram, exact min µs, exact max µs]",
        "metrics": {metric: histograms.encode() for metric, histograms in sorted(metrics.items())},
    }
    return _write(HISTOGRAMS, prefix, document, indent=1)


def read_histograms(path: str | os.PathLike[str]) -> dict[str, LatencyHistograms]:
    """The metrics of ``write_histograms``' file at ``path``; HistogramError naming what is wrong, OSError when it
    cannot be read."""
    try:
        with open(path) as handle:
            document = json.load(handle)
    except json.JSONDecodeError as error:
        raise HistogramError(f"not valid JSON ({error})") from None
    metrics = document.get("metrics") if isinstance(document, dict) else None
    if not isinstance(metrics, dict):
        raise HistogramError("no 'metrics' object: not a histograms file")
    result = {}
    for metric, report in metrics.items():
        if not isinstance(report, list):
            raise HistogramError(f"metric {metric!r}: expected a list of histograms")
        try:
            result[str(metric)] = LatencyHistograms.decode(report)
        except HistogramError as error:
            raise HistogramError(f"metric {metric!r}: {error}") from None
    return result
