"""A command line read in process as ``locust`` reads it (``settings_from_arguments``): Locust's parser with the
suite's options, the ``LOCUST_*`` variables, then the one validation of a test; a bad value is the one line
``locust`` prints after ``locust: error:``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from locust_runs import run_locust

from grpc_user.locust.settings.__main__ import main as settings_command
from grpc_user.locust.settings.arguments import ArgumentsError, locust_parser, settings_from_arguments
from grpc_user.locust.settings.suite import OPTIONS, CapacitySettings
from grpc_user.locust.settings.table import options_of
from grpc_user.locust.settings.values import OptionError

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


# One bad value per option that takes a value, and the line ``locust`` prints for it. Options that need others to be
# read at all (--capacity-search's) get them in PREREQUISITES.
BAD_VALUES = {
    "--batch-size": ("1001", "accepted: a whole number from 1 to 1000"),
    "--mix": ("write=1,read=2", "accepted: comma-separated kind=weight with kinds write/batch/query"),
    "--message-bytes": ("lots", "accepted: a whole number from 0 to 4194304"),
    "--seed": ("x", "accepted: a whole number >= 0"),
    "--service-name": ("shop\udcff", "accepted: text that is valid UTF-8"),
    "--run-id": ("run\udcff", "accepted: text that is valid UTF-8"),
    "--grpc-timeout": ("-1", "accepted: a number of seconds >= 0.001 and <= 86400"),
    "--grpc-connections": ("0", "accepted: a whole number from 1 to 1000"),
    "--grpc-lb": ("least_request", "accepted: pick_first or round_robin (grpc's default: pick_first)"),
    "--max-requests": ("-5", "accepted: a whole number >= 0"),
    "--target-rps": ("fast", "accepted: a number of requests per second (0: no pacing) >= 0 and <= 10000000"),
    "--arrival-rate": ("100:2000", "accepted: calls per second R > 0 in total (e.g. 500), a ramp"),
    "--capacity-start": ("0.5", "accepted: a number of calls per second >= 1 and <= 10000000"),
    "--capacity-step": ("1", "accepted: a number of seconds >= 2 and <= 86400"),
    "--capacity-precision": ("1", "accepted: a fraction > 0 and < 1"),
    "--slo-p95-ms": ("0", "accepted: a number of milliseconds > 0 and <= 3600000"),
    "--slo-failure-rate": ("1.5", "accepted: a fraction >= 0 and <= 1"),
    "--batch-sizes": ("10,x", "accepted: comma-separated batch sizes from 1 to 1000"),
    "--slo-visibility-p95-ms": ("-1", "accepted: a number of milliseconds >= 0 and <= 3600000"),
    "--audit-timeout": ("inf", "accepted: a number of seconds > 0 and <= 86400"),
    "--audit-settle": ("0", "accepted: a number of seconds > 0 and <= 86400"),
    "--freshness-sample-rate": ("nan", "accepted: a number of samples per second > 0 and <= 1000"),
    "--freshness-poll-interval": ("0", "accepted: a number of seconds >= 0.01 and <= 10"),
    "--freshness-query-share": ("101", "accepted: a number of percent >= 0.01 and <= 100"),
    "--action": ("soon:echo hi", "accepted: AT:COMMAND with AT a Locust timespan"),
    "--action-failure": ("halt", "accepted: continue or stop"),
    "--action-timeout": ("0", "accepted: a number of seconds > 0 and <= 86400"),
    "--grpc-ca": ("/no/such/ca.pem", "accepted: the path of a readable PEM file"),
    "--grpc-cert": ("/no/such/cert.pem", "accepted: the path of a readable PEM file"),
    "--grpc-key": ("/no/such/key.pem", "accepted: the path of a readable PEM file"),
    "--grpc-authority": ("bad|name", "accepted: host or host:port"),
    "--grpc-metadata": ("novalue", "accepted: key=value with a lowercase key"),
    "--grpc-token-env": ("UNPRINTABLE_TOKEN", "accepted: a variable holding a token of printable ASCII"),
}
PREREQUISITES = {option.flag: ["--capacity-search"] for option in options_of(CapacitySettings)}


def test_every_option_that_takes_a_value_has_a_bad_value_case():
    assert set(BAD_VALUES) == {option.flag for option in OPTIONS if option.kind != "switch"}


@pytest.mark.parametrize(("flag", "value", "accepted"), [(flag, *case) for flag, case in BAD_VALUES.items()])
def test_each_options_bad_value_is_refused_in_one_line_as_locust_refuses_it(flag, value, accepted, monkeypatch):
    monkeypatch.setenv("UNPRINTABLE_TOKEN", "tøken")  # the token's variable is read from the process environment
    with pytest.raises(OptionError) as refused:
        settings_from_arguments([*HOST, *PREREQUISITES.get(flag, []), flag, value], environ={})
    line = str(refused.value)
    assert line.startswith(f"{flag}=") and f" is not valid; {accepted}" in line and "\n" not in line, line


@pytest.mark.parametrize("flag", [option.flag for option in OPTIONS if option.kind == "value"])
def test_each_option_is_read_from_its_locust_variable(flag, monkeypatch):
    monkeypatch.setenv("UNPRINTABLE_TOKEN", "tøken")
    variable = "LOCUST_" + flag.removeprefix("--").replace("-", "_").upper()
    value, _ = BAD_VALUES[flag]
    with pytest.raises(OptionError, match=f"^{re.escape(flag)}="):
        settings_from_arguments([*HOST, *PREREQUISITES.get(flag, [])], environ={variable: value})


def test_the_help_shows_the_suites_options_in_their_groups_as_locusts_own():
    parser = locust_parser(add_help=True)
    groups = {
        group.title: [action.option_strings[0] for action in group._group_actions if action.option_strings]
        for group in parser._action_groups
    }
    for option in OPTIONS:
        assert option.flag in groups[option.group]
    assert "Web UI options" in groups  # Locust's own groups are still there
    assert "--batch-size N" in parser.format_help() and "[env LOCUST_BATCH_SIZE]" in parser.format_help()


def test_the_web_ui_shows_the_options_the_table_marks_for_it():
    shown = set(locust_parser().args_included_in_web_ui)
    assert {option.dest for option in OPTIONS if option.web_ui} <= shown
    assert not {option.dest for option in OPTIONS if not option.web_ui} & shown


def test_an_option_of_a_section_that_is_off_is_still_refused_when_bad():
    with pytest.raises(OptionError, match=r"^--batch-sizes='10,x' is not valid; accepted: comma-separated batch"):
        settings_from_arguments([*HOST, "--batch-sizes", "10,x"], environ={})
    with pytest.raises(OptionError, match=r"^--batch-sizes='10' is not valid; accepted: with --capacity-search only"):
        settings_from_arguments([*HOST, "--batch-sizes", "10"], environ={})
    # Every option of the section, not only one: --slo-visibility-p95-ms 500 alone gated nothing, silently
    for flag, value in (("--slo-visibility-p95-ms", "500"), ("--slo-p95-ms", "200"), ("--capacity-start", "50")):
        with pytest.raises(
            OptionError, match=rf"^{flag}='{value}' is not valid; accepted: with --capacity-search only"
        ):
            settings_from_arguments([*HOST, flag, value], environ={})
    settings_from_arguments([*HOST, "--slo-p95-ms", "1000"], environ={})  # the default changes nothing: accepted


def test_the_settings_command_prints_the_grouped_help_or_the_verdict(capsys, monkeypatch):
    monkeypatch.delenv("LOCUST_BATCH_SIZE", raising=False)
    assert settings_command([]) == 0 and "Capacity search (--capacity-search):" in capsys.readouterr().out
    assert settings_command([*HOST, "--batch-size", "0"]) == 2
    assert (
        capsys.readouterr().err
        == "locust: error: --batch-size='0' is not valid; accepted: a whole number from 1 to 1000\n"
    )
    assert settings_command([*HOST, "--batch-size", "7"]) == 0 and "'batch_size': 7" in capsys.readouterr().out


def test_the_seed_clients_variables_are_read_and_a_bad_one_is_one_line(monkeypatch):
    monkeypatch.setenv("GRPC_SERVER_HOST", "127.0.0.1")
    monkeypatch.setenv("GRPC_SERVER_PORT", "5")
    settings_from_arguments([], environ={})  # no --host: 127.0.0.1:5, as the seed clients read it
    monkeypatch.setenv("GRPC_SERVER_PORT", "fifty")
    with pytest.raises(OptionError, match=r"^GRPC_SERVER_PORT='fifty' is not valid; accepted: a port from 1 to 65535"):
        settings_from_arguments([], environ={})
    monkeypatch.setenv("MAX_BATCH_SIZE", "lots")
    with pytest.raises(OptionError, match=r"^MAX_BATCH_SIZE='lots' is not valid; accepted: a whole number >= 1"):
        settings_from_arguments(HOST, environ={})
    monkeypatch.setenv("MAX_BATCH_SIZE", "50")
    with pytest.raises(OptionError, match=r"^--batch-size='100' is not valid; accepted: a whole number from 1 to 50$"):
        settings_from_arguments(HOST, environ={})
    assert settings_from_arguments([*HOST, "--batch-size", "50"], environ={}).batch_size == 50


@pytest.mark.slow
def test_a_bad_client_variable_stops_locust_with_exit_2_and_one_line_not_a_traceback(tmp_path):
    run = run_locust("single", "grpc://127.0.0.1:9", tmp_path, env={**os.environ, "MAX_BATCH_SIZE": "lots"})
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert "locust: error: MAX_BATCH_SIZE='lots' is not valid; accepted: a whole number >= 1" in run.stderr


@pytest.mark.slow  # Locust processes
@pytest.mark.parametrize("command", [["locust"], ["python", "-m", "locust"]], ids=["locust", "python -m locust"])
def test_locust_s_own_help_shows_the_suite_s_options_in_their_groups(command, tmp_path):
    """Locust prints its help before it imports a locustfile (locustio/locust#2917): the venv's
    ``grpc_user_locust_help.pth`` (installed by ``make venv``) imports the plugin first, for ``--help`` alone."""
    bin_dir = Path(sys.executable).parent
    argv = [str(bin_dir / "locust")] if command == ["locust"] else [sys.executable, "-m", "locust"]
    shown = subprocess.run([*argv, "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr[-2000:]
    for option in OPTIONS:
        assert option.flag.split()[0] in shown.stdout, option.flag
    assert "\nDelivery audit:\n" in shown.stdout and "\nWeb UI options:\n" in shown.stdout
    check = "import sys; print(sorted({'grpc_user', 'locust'} & set(sys.modules)))"
    imported = subprocess.run([sys.executable, "-c", check, "--help"], capture_output=True, text=True, timeout=60)
    assert imported.stdout == "[]\n", "any other process of the venv imports nothing of the suite or Locust"
