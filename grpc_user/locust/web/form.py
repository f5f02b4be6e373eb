"""The web UI's start form checked before ``/swarm`` starts anything, the same way the command line is checked.

Locust's ``/swarm`` writes the form's fields into the running options and starts the users; a suite option it
would then refuse (``arrival_rate=abc``) used to be refused only in the server log, after users had spawned.
``form_problem`` applies the form to a copy of the options, as Locust's ``/swarm`` applies it, and runs the one
validation of a test (``settings_for_test``) on the copy.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from grpc_user.locust.lifecycle.settings import OptionError, settings_for_test
from grpc_user.locust.lifecycle.state import suite_run

# Locust's form names for its own options; its /swarm parses these itself and answers for a bad one.
FORM_NUMBERS = {"user_count": ("num_users", int), "spawn_rate": ("spawn_rate", float)}


def options_with_form(options: argparse.Namespace | None, form: Mapping[str, str]) -> argparse.Namespace:
    """A copy of ``options`` with the form's fields applied as Locust's ``/swarm`` applies them: ``true`` for a
    flag, the text for a text option. Fields Locust parses itself are copied when they parse, left out when not."""
    values: dict[str, Any] = dict(vars(options)) if options is not None else {}
    for field, text in form.items():
        if field in FORM_NUMBERS:
            name, kind = FORM_NUMBERS[field]
            try:
                values[name] = kind(text)
            except ValueError:
                continue
        elif field in values and isinstance(values[field], bool):
            values[field] = text == "true"
        elif field in values and (values[field] is None or isinstance(values[field], str)):
            values[field] = text
    return argparse.Namespace(**values)


def form_problem(environment: Any, form: Mapping[str, str]) -> str:
    """Why the test this form would start is refused, in one line ('' when it may start)."""
    host = str(form.get("host", environment.host or "")).replace("<", "").replace(">", "")
    run = suite_run(environment)
    try:
        settings_for_test(options_with_form(environment.parsed_options, form), host, run.startup_security,
                          environment.user_classes or [], run.startup_actions)  # fmt: skip
    except OptionError as error:
        return str(error)
    return ""
