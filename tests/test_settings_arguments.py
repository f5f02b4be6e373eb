"""A command line read in process as ``locust`` reads it (``settings_from_arguments``): Locust's parser with the
suite's options, the ``LOCUST_*`` variables, then the one validation of a test; a bad value is the one line
``locust`` prints after ``locust: error:``."""

from __future__ import annotations

import pytest
import unpatched_locust  # noqa: F401  (before Locust's parser is imported)

from grpc_user.locust.settings.arguments import ArgumentsError, settings_from_arguments
from grpc_user.locust.settings.suite import OptionError

HOST = ["--host", "grpc://127.0.0.1:50051"]


def test_no_arguments_give_every_default():
    settings = settings_from_arguments(HOST, environ={})
    assert (settings.batch_size, settings.grpc_timeout, settings.arrival_rate, settings.capacity) == (
        100,
        5.0,
        None,
        None,
    )


def test_arguments_and_locust_variables_are_read_as_locust_reads_them():
    settings = settings_from_arguments([*HOST, "--batch-size", "7"], environ={"LOCUST_GRPC_TIMEOUT": "2.5"})
    assert (settings.batch_size, settings.grpc_timeout) == (7, 2.5)


@pytest.mark.parametrize(
    ("argv", "environ", "line"),
    [
        (["--batch-size", "0"], {}, "--batch-size='0' is not valid; accepted: a whole number from 1 to 1000"),
        (["-u", "-1"], {}, "-u/--users=-1 is not valid; accepted: a whole number >= 0"),
        ([], {"LOCUST_ARRIVAL_RATE": "0"}, "--arrival-rate='0' is not valid; accepted: calls per second R > 0 in"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_option_the_value_and_what_is_accepted(argv, environ, line):
    with pytest.raises(OptionError) as refused:
        settings_from_arguments([*HOST, *argv], environ=environ)
    assert str(refused.value).startswith(line) and "\n" not in str(refused.value)


def test_the_target_is_checked_too():
    with pytest.raises(OptionError, match=r"^--host='127.0.0.1' is not valid; accepted: host:port"):
        settings_from_arguments(["--host", "127.0.0.1"], environ={})


def test_what_locusts_parser_refuses_itself_is_an_option_error_not_an_exit():
    with pytest.raises(ArgumentsError, match="^unrecognized arguments: --batch-sise"):
        settings_from_arguments([*HOST, "--batch-sise", "5"], environ={})
