"""The suite's options read from a command line in process, exactly as ``locust`` reads them: Locust's own parser
with the suite's options registered on it, then the one validation of a test (``settings_for_test``).

For tests and tools that need a command line's verdict without starting a Locust process. Importing this module
imports Locust (and gevent's monkey-patching)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import NoReturn

from locust import argument_parser

from grpc_user.locust.settings.checks import settings_for_test
from grpc_user.locust.settings.registration import register_options
from grpc_user.locust.settings.suite import SuiteSettings
from grpc_user.locust.settings.values import OptionError


class ArgumentsError(OptionError):
    """A command line Locust's parser itself refuses (an unknown option, an option without its value)."""

    def __init__(self, message: str) -> None:
        ValueError.__init__(self, message)
        self.option = ""


def _refuse(message: str) -> NoReturn:
    raise ArgumentsError(message)


def locust_parser(add_help: bool = False) -> argument_parser.LocustArgumentParser:
    """Locust's own parser (its options, in its groups) with the suite's registered on it, reading no config file:
    the parser ``locust`` builds once it has imported a locustfile with a GrpcUser."""
    parser = argument_parser.get_empty_argument_parser(add_help=add_help, default_config_files=[])
    argument_parser.setup_parser_arguments(parser)
    register_options(parser)
    return parser


def settings_from_arguments(argv: Sequence[str], environ: Mapping[str, str] | None = None,
                            user_classes: Iterable[type] = ()) -> SuiteSettings:  # fmt: skip
    """``argv`` (without the program name, e.g. ``["--batch-size", "0"]``) and ``environ`` (the ``LOCUST_*``
    variables; default ``os.environ``) parsed by Locust's parser with the suite's options, validated as a headless
    ``locust`` validates them before users spawn, ``--host`` included (GRPC_SERVER_HOST/PORT when absent).
    ``user_classes``: the workload's users, for the options that depend on it (``--batch-sizes``).

    Raises OptionError with the one line ``locust`` prints after ``locust: error:`` (its exit code is 2);
    ArgumentsError (an OptionError) for what Locust's parser refuses itself. Reads no config file."""
    parser = locust_parser()
    parser.error = _refuse  # type: ignore[method-assign]  # Locust's error() exits the process
    options = parser.parse_args(list(argv), env_vars=os.environ if environ is None else environ)
    return settings_for_test(options, options.host, None, user_classes)
