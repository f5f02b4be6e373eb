"""How one option is declared: ``option(...)`` on a field of a settings dataclass gives the flag, the parser, the
default as typed, the help, the ``--help`` group, whether the web UI shows it and its environment variable, and makes
the field's default the parsed default. ``section(...)`` nests a dataclass of more options, switched on by a flag.

Locust's parser, the validation, the settings and the web form all read these declarations (``options_of``,
``read_settings``): adding an option is one field.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from grpc_user.locust.settings.values import OptionError, Parser, Refused

OPTION = "option"
SECTION = "section"
Kind = Literal["value", "switch", "repeat"]


@dataclass(frozen=True)
class Option:
    """One suite option. ``default``: as typed (text; False for a switch; () for a repeatable option);
    ``shown_default``: what the README's table and ``--help`` show for an empty default ("random", "off")."""

    flag: str
    parse: Parser
    default: str | bool | tuple[str, ...]
    help: str
    group: str
    kind: Kind = "value"
    web_ui: bool = True
    shown_default: str = ""
    metavar: str | None = None

    @property
    def dest(self) -> str:
        """The attribute of Locust's parsed options: ``--batch-size`` -> ``batch_size``."""
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def env_var(self) -> str:
        """Locust's convention: ``LOCUST_`` and the flag in capitals, ``--batch-size`` -> ``LOCUST_BATCH_SIZE``."""
        return "LOCUST_" + self.dest.upper()

    @property
    def default_text(self) -> str:
        """The default as the README's table and ``--help`` show it."""
        if self.kind != "value" or not self.default:
            return self.shown_default or "off"
        return str(self.default)

    def value(self, raw: Any) -> Any:
        """``raw`` parsed; raises OptionError, one line naming the flag, the value and what is accepted."""
        try:
            return self.parse(raw)
        except Refused as refused:
            raise OptionError(self.flag, raw if refused.shown is None else refused.shown, refused.accepted) from None

    def read(self, options: argparse.Namespace) -> Any:
        """This option's value in Locust's parsed options (its default when they lack it), parsed."""
        return self.value(getattr(options, self.dest, self.default))


@dataclass(frozen=True)
class Section:
    """A nested dataclass of options. ``switch``: the flag that turns it on (the field is None while off);
    ``build``: what the field holds, made from the section's parsed values (default: the dataclass itself)."""

    settings: type
    switch: Option | None = None
    build: Callable[[Any], Any] | None = None


def option(
    flag: str,
    parse: Parser,
    default: str | bool | tuple[str, ...],
    help: str,
    group: str,
    *,
    kind: Kind = "value",
    web_ui: bool = True,
    shown_default: str = "",
    metavar: str | None = None,
) -> Any:
    """A settings field declared by its option; its default is ``default`` parsed."""
    declared = Option(flag, parse, default, help, group, kind, web_ui, shown_default, metavar)
    return dataclasses.field(default=declared.value(default), metadata={OPTION: declared})


def section(
    settings: type, default: Any, switch: Option | None = None, build: Callable[[Any], Any] | None = None
) -> Any:
    """A settings field that holds a nested section of options (see ``Section``)."""
    return dataclasses.field(default=default, metadata={SECTION: Section(settings, switch, build)})


def options_of(settings: type) -> Iterator[Option]:
    """Every option a settings dataclass declares, nested sections' too, in declaration order."""
    for field in dataclasses.fields(settings):
        if OPTION in field.metadata:
            yield field.metadata[OPTION]
        elif SECTION in field.metadata:
            nested: Section = field.metadata[SECTION]
            if nested.switch is not None:
                yield nested.switch
            yield from options_of(nested.settings)


def read_settings(settings: type, options: argparse.Namespace, given: dict[str, Any] | None = None) -> Any:
    """An instance of ``settings`` with every option read from Locust's parsed ``options`` and parsed; ``given``:
    fields fixed by the caller instead. Raises OptionError for the first option it does not accept, a switched-off
    section's too (its field is None, but ``--slo-p95-ms -1`` is refused with or without ``--capacity-search``)."""
    values: dict[str, Any] = dict(given or {})
    for field in dataclasses.fields(settings):
        if field.name in values:
            continue
        if OPTION in field.metadata:
            values[field.name] = field.metadata[OPTION].read(options)
        elif SECTION in field.metadata:
            nested: Section = field.metadata[SECTION]
            parsed = read_settings(nested.settings, options)  # a bad value is refused even while switched off
            if nested.switch is not None and not nested.switch.read(options):
                _refuse_set_while_off(nested.settings, nested.switch, parsed, options)
                values[field.name] = None
                continue
            values[field.name] = nested.build(parsed) if nested.build else parsed
    return settings(**values)


def _refuse_set_while_off(settings: type, switch: Option, parsed: Any, options: argparse.Namespace) -> None:
    """A section's option set away from its default while its switch is off has no effect: refused, one line
    (``--slo-visibility-p95-ms 500`` without ``--capacity-search`` gated nothing, silently)."""
    for field in dataclasses.fields(settings):
        declared: Option | None = field.metadata.get(OPTION)
        if declared is not None and getattr(parsed, field.name) != declared.value(declared.default):
            raise OptionError(declared.flag, getattr(options, declared.dest, declared.default),
                              f"with {switch.flag} only (without it, it has no effect)")  # fmt: skip
