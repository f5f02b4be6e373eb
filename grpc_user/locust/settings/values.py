"""Parsers of option values: the text typed on a command line, in a ``LOCUST_*`` variable or in the web UI's start
form -> a typed value, or ``Refused`` saying what is accepted. ``OptionError`` is the one line a refused value becomes.

Pure functions that import nothing of Locust themselves.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from grpc_user.channels import LB_POLICIES

Parser = Callable[[Any], Any]
PRINTABLE_ASCII = "printable ASCII (space to ~)"
MIX_KINDS = ("write", "batch", "query")


class OptionError(ValueError):
    """A suite option with a value it does not accept: ``--flag='value' is not valid; accepted: …`` in one line."""

    def __init__(self, option: str, value: Any, accepted: str) -> None:
        super().__init__(f"{option}={value!r} is not valid; accepted: {accepted}")
        self.option = option


class Refused(ValueError):
    """A value a parser does not accept. ``accepted``: what is; ``shown``: what the message shows instead of the
    value (a metadata pair's key without its value, which may be secret)."""

    def __init__(self, accepted: str, shown: Any = None) -> None:
        super().__init__(accepted)
        self.accepted, self.shown = accepted, shown


def whole(low: int, high: int | None = None) -> Parser:
    """A whole number from ``low`` (to ``high``)."""
    accepted = f"a whole number from {low} to {high}" if high is not None else f"a whole number >= {low}"

    def parse(raw: Any) -> int:
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise Refused(accepted) from None
        if value < low or (high is not None and value > high):
            raise Refused(accepted)
        return value

    return parse


def number(unit: str, least: float = 0.0, allow_zero: bool = False, most: float = math.inf) -> Parser:
    """A finite number of ``unit``: > 0 (>= 0 with ``allow_zero``; >= ``least`` when given) and <= ``most``."""
    inclusive = bool(least or allow_zero)
    accepted = f"a number of {unit} {'>=' if inclusive else '>'} {least:.10g}"
    accepted += f" and <= {most:.10g}" if math.isfinite(most) else ""

    def parse(raw: Any) -> float:
        try:
            value = float(str(raw).strip())
        except ValueError:
            raise Refused(accepted) from None
        if not math.isfinite(value) or not (value >= least if inclusive else value > least) or value > most:
            raise Refused(accepted)
        return value

    return parse


def fraction(allow_zero: bool, allow_one: bool) -> Parser:
    """A fraction between 0 and 1, each end included or not."""
    accepted = f"a fraction {'>=' if allow_zero else '>'} 0 and {'<=' if allow_one else '<'} 1"

    def parse(raw: Any) -> float:
        try:
            value = float(str(raw).strip())
        except ValueError:
            raise Refused(accepted) from None
        if not (value >= 0 if allow_zero else value > 0) or not (value <= 1 if allow_one else value < 1):
            raise Refused(accepted)  # NaN fails both comparisons
        return value

    return parse


def optional(parser: Parser) -> Parser:
    """``parser``, with an empty value meaning None (unset)."""

    def parse(raw: Any) -> Any:
        return None if raw is None or not str(raw).strip() else parser(raw)

    return parse


def text(fallback: str = "") -> Parser:
    """Text protobuf can send (UTF-8: no lone surrogates from an undecodable environment variable); empty ->
    ``fallback``."""

    def parse(raw: Any) -> str:
        value = str(raw or fallback)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise Refused("text that is valid UTF-8") from None
        return value

    return parse


def switch(raw: Any) -> bool:
    """A flag: given or not (the web form sends ``true``)."""
    return raw is True or str(raw).strip().lower() == "true"


def negated(raw: Any) -> bool:
    """A ``--no-…`` flag: True when not given."""
    return not switch(raw)


def one_of(choices: Sequence[str], accepted: str, empty_ok: bool = False) -> Parser:
    """One of ``choices`` (or empty with ``empty_ok``), as typed."""

    def parse(raw: Any) -> str:
        value = "" if raw is None else str(raw).strip()
        if (value or not empty_ok) and value not in choices:
            raise Refused(accepted)
        return value

    return parse


LB_POLICY = one_of(LB_POLICIES, f"{' or '.join(LB_POLICIES)} (grpc's default: pick_first)", empty_ok=True)


def mix(raw: Any) -> tuple[tuple[str, int], ...]:
    """``write=70,batch=20,query=10`` -> weights; kinds from MIX_KINDS, whole weights, some > 0."""
    kinds = "/".join(MIX_KINDS)
    accepted = f"comma-separated kind=weight with kinds {kinds} and whole weights, e.g. write=70,batch=20,query=10"
    weights: dict[str, int] = {}
    for part in str(raw).split(","):
        kind, sep, weight = part.strip().partition("=")
        if not sep or kind.strip() not in MIX_KINDS or kind.strip() in weights or not weight.strip().isdigit():
            raise Refused(accepted)
        weights[kind.strip()] = int(weight)
    if not any(weights.values()):
        raise Refused(accepted)
    return tuple(weights.items())


def first_unprintable(value: str) -> str:
    """The first character gRPC cannot send in text metadata ('' when there is none)."""
    return next((char for char in value if not " " <= char <= "~"), "")


def metadata_pairs(pairs: Any) -> tuple[tuple[str, str], ...]:
    """``--grpc-metadata key=value`` pairs as gRPC sends them: a lowercase key (no ``grpc-`` prefix, no ``-bin``
    binary header) and a value of printable ASCII. A bad value is shown by its key only (values may be secret)."""
    if not pairs:
        return ()
    items = [pairs] if isinstance(pairs, str) else list(pairs)
    accepted = "key=value with a lowercase key of a-z 0-9 - _ . (not starting with grpc-)"
    parsed = []
    for item in items:
        key, sep, value = str(item).partition("=")
        valid_key = key and all(c.isdigit() or "a" <= c <= "z" or c in "-_." for c in key)
        if not sep or not valid_key or key.startswith("grpc-") or key.endswith("-bin"):
            raise Refused(accepted, shown=item)
        if bad := first_unprintable(value):
            raise Refused(
                f"a value of {PRINTABLE_ASCII}, the only characters gRPC sends in text metadata ({bad!r} is not)",
                shown=f"{key}=…",
            )
        parsed.append((key, value))
    return tuple(parsed)
