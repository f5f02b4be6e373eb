"""The web UI's start form checked before ``/swarm`` changes anything, the same way the command line is checked.

Locust's ``/swarm`` writes the form's fields into the running options one by one and only then refuses a bad
``user_count``, ``spawn_rate`` or ``run_time``: the fields written before the refusal stayed, and the next start
ran with them (a refused ``max_requests=3`` ended every later test after three calls). A field whose text its
option's type cannot read (``expect_workers=abc``) raised inside Locust's handler: an HTML error page and a
traceback, no ``success: false``. So ``form_test`` applies the whole form to a copy of the options, exactly as
Locust's ``/swarm`` would apply it, refusing what Locust would refuse, and runs the one validation of a test
(``settings_for_test``) on the copy; Locust's handler runs, and writes the options, only when nothing is refused.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from grpc_user.locust.run.state import suite_run
from grpc_user.locust.settings.checks import settings_for_test
from grpc_user.locust.settings.suite import BY_DEST, SuiteSettings
from grpc_user.locust.settings.values import OptionError

if TYPE_CHECKING:
    from werkzeug.datastructures import MultiDict

# The fields of Locust's own start form, which its /swarm reads by name (not through the options' types).
LOCUST_FIELDS = ("user_count", "spawn_rate", "host", "run_time", "profile", "user_classes", "shape_class")
RUN_TIME_FORMATS = "a Locust timespan: 20, 20s, 3m, 2h, 1h20m, 3h30m10s"
KIND_WORDS = {int: "a whole number", float: "a number"}


def _read(field: str, text: str, kind: Callable[[str], Any], accepted: str) -> Any:
    try:
        return kind(text)
    except (TypeError, ValueError):
        raise OptionError(field, text, accepted) from None


def _spawn_rate(text: str) -> float:
    """Locust's own check of ``spawn_rate``: a finite number > 0."""
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(text)
    return value


def _user_count(text: str) -> int:
    """Locust's own check of ``user_count``: a whole number >= 0."""
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


def _as_option(field: str, text: str, form: MultiDict, current: Any) -> Any:
    """``text`` as Locust's ``/swarm`` writes it into an option whose value is ``current``: ``true`` for a flag,
    the text for an option without a value, a list for a list, else the current value's type (int, float, str).
    Raises OptionError where Locust's conversion would raise. A suite option is taken as typed, a flag as ``true``:
    its kind is the table's, and ``settings_for_test`` parses it with the table's parser."""
    if (declared := BY_DEST.get(field)) is not None:
        return text == "true" if declared.kind == "switch" else text
    if isinstance(current, bool):
        return text == "true"
    if current is None:
        return text
    option = f"--{field.replace('_', '-')}"
    if isinstance(current, list):
        items = text.split(",") if "," in text else form.getlist(field)
        if all(isinstance(item, int) for item in current):
            return [_read(option, item, int, "comma-separated whole numbers") for item in items]
        return items
    kind = type(current)
    return _read(option, text, kind, KIND_WORDS.get(kind, f"a value Locust reads as {kind.__name__}"))


def options_with_form(options: argparse.Namespace | None, form: MultiDict, form_options: Collection[str],
                      shape_runs: bool) -> argparse.Namespace:  # fmt: skip
    """A copy of ``options`` with the form's fields applied as Locust's ``/swarm`` applies them.

    ``form_options``: the options the start form shows (Locust's ``extra_options``); any other option is
    refused, as is a field Locust would refuse or fail to read. ``shape_runs``: a load shape starts the test,
    so ``user_count`` and ``spawn_rate`` may be left out. Raises OptionError, one line naming the field.
    """
    # Imported here: importing Locust monkey-patches with gevent, and this module's constants are read outside it.
    from locust.util.timespan import parse_timespan

    values: dict[str, Any] = dict(vars(options)) if options is not None else {}
    for field, text in form.items():  # the first value of each field, as Locust reads them
        if field == "user_count":
            values["num_users"] = _read(field, text, _user_count, "a whole number of users >= 0")
        elif field == "spawn_rate":
            values[field] = _read(field, text, _spawn_rate, "a number of users started per second > 0")
        elif field == "host":
            values[field] = text.replace("<", "").replace(">", "")
        elif field == "run_time":
            if text:
                values[field] = _read(field, text, parse_timespan, RUN_TIME_FORMATS)
        elif field == "profile":
            values[field] = text or None
        elif field == "user_classes":
            values[field] = form.getlist(field)
        elif field in values and field != "shape_class":
            if field not in form_options:
                raise OptionError(
                    field,
                    text,
                    f"a field of the start form ({', '.join(LOCUST_FIELDS[:4])}, … and "
                    f"the options it shows): --{field.replace('_', '-')} is set when Locust starts",
                )
            values[field] = _as_option(field, text, form, values[field])
    if not shape_runs:
        for field in ("user_count", "spawn_rate"):
            if field not in form:
                raise OptionError(field, "", "a value in every start: Locust's /swarm needs user_count and "
                                  "spawn_rate unless a load shape runs the test")  # fmt: skip
    return argparse.Namespace(**values)


def form_test(environment: Any, web_ui: Any, form: MultiDict) -> tuple[str, SuiteSettings]:
    """The host and the settings of the test this form would start, checked as the command line is, before
    Locust's ``/swarm`` writes the form into the options. Raises OptionError, one line naming the field."""
    user_classes = environment.user_classes or []
    if web_ui.userclass_picker_is_active:
        shape_runs = form.get("shape_class", "Default") != "Default"
        if picked := form.getlist("user_classes"):
            user_classes = [cls for name, cls in environment.available_user_classes.items() if name in picked]
    else:
        shape_runs = environment.shape_class is not None
    form_options = web_ui.template_args.get("extra_options") or {}
    host = str(form.get("host", environment.host or "")).replace("<", "").replace(">", "")
    run = suite_run(environment)
    options = options_with_form(environment.parsed_options, form, form_options, shape_runs)
    return host, settings_for_test(options, host, run.startup_security, user_classes, run.startup_actions)
