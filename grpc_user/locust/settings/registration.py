"""Register the suite's options on Locust's argument parser from the one table (``suite.OPTIONS``), each in its
``--help`` group as Locust's own options are, so they show in ``--help``, the web UI (unless declared
``web_ui=False``) and as ``LOCUST_*`` environment variables. Values stay as typed: ``settings_from_options``
parses them, so the web UI's form and the master's spawn messages carry the same text the command line does."""

from __future__ import annotations

from typing import Any

from grpc_user.locust.settings.suite import OPTIONS
from grpc_user.locust.settings.table import Option

ACTIONS = {"value": "store", "switch": "store_true", "repeat": "append"}


def help_line(declared: Option) -> str:
    """The help, the default and the environment variable, escaped for argparse (which formats ``%``)."""
    text = f"{declared.help} (default: {declared.default_text}) [env {declared.env_var}]"
    return text.replace("%", "%%")


def register_option(container: Any, declared: Option) -> None:
    """Add one option to a parser or argument group, with the attributes Locust's web UI reads from its own
    ``LocustArgumentParser.add_argument`` (an argument group's ``add_argument`` does not set them)."""
    extra = {"metavar": declared.metavar} if declared.metavar and declared.kind != "switch" else {}
    default = list(declared.default) if isinstance(declared.default, tuple) else declared.default  # a list per parser
    action = container.add_argument(declared.flag, action=ACTIONS[declared.kind], default=default,
                                    env_var=declared.env_var, help=help_line(declared), **extra)  # fmt: skip
    action.include_in_web_ui = declared.web_ui
    action.is_secret = action.is_required = action.is_multiple = False


def register_options(parser: Any) -> None:
    """Add every suite option to Locust's argument parser, one argument group per ``Option.group``, in the table's
    order (``settings_from_options`` validates the values)."""
    groups: dict[str, Any] = {}
    for declared in OPTIONS:
        if declared.group not in groups:
            groups[declared.group] = parser.add_argument_group(declared.group)
        register_option(groups[declared.group], declared)
