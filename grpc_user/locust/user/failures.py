"""Failure exceptions for Locust request events, grouped by cause.

Locust groups failures by the exact text of ``repr(exception)``, so the text must be stable per
cause: it starts with the status name (``RESOURCE_EXHAUSTED``, ``APP_FAILURE``, ``PARTIAL_BATCH``
...) and has digits folded to ``N``, so "3 logs failed" and "7 logs failed" are one row, not an
ever-growing table. Exact counts live in the logs counters instead.
"""

from __future__ import annotations

import re

_DIGITS = re.compile(r"\d+")
MAX_DETAIL = 200


class GrpcCallFailure(Exception):
    """A failed call as Locust records it: ``CAUSE: detail``."""

    def __init__(self, cause: str, detail: str) -> None:
        text = _DIGITS.sub("N", " ".join(detail.split()))[:MAX_DETAIL]
        super().__init__(f"{cause}: {text}" if text else cause)
        self.cause = cause

    def __repr__(self) -> str:
        return str(self)


def failure_from_message(message: str) -> GrpcCallFailure:
    """A failure from a result's ``error_message`` (``CAUSE: detail (target …)``)."""
    cause, _, detail = message.partition(": ")
    detail = detail.rsplit(" (target ", 1)[0]
    return GrpcCallFailure(cause, detail)
