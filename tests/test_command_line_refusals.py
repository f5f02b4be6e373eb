"""A bad value on ``locust``'s command line is one line naming the option, the value and what is accepted, read in
process as ``locust`` reads it (``settings_from_arguments``: Locust's parser with the suite's options, then the one
validation of a test). What a real ``locust`` process makes of that line (exit 2, ``locust: error:`` and the line, no
traceback, none of Locust's CSV files) is ``test_grpc_user.py``'s, for one suite option, one Locust option and a host.
"""

from __future__ import annotations

import subprocess

import pytest
import unpatched_locust  # noqa: F401  (before Locust's parser is imported)
from locust_runs import ROOT

from grpc_user.locust.settings.arguments import settings_from_arguments
from grpc_user.locust.settings.suite import FRESHNESS, OPTIONS
from grpc_user.locust.settings.values import OptionError

HOST = "grpc://127.0.0.1:9"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--batch-size", "0", "--batch-size='0' is not valid; accepted: a whole number from 1 to 1000"),
        ("--batch-size", "1001", "accepted: a whole number from 1 to 1000"),
        ("--mix", "write=1,read=2", "--mix='write=1,read=2' is not valid; accepted: comma-separated kind=weight"),
        ("--mix", "write=0", "--mix='write=0' is not valid"),
        ("--grpc-timeout", "-1", "--grpc-timeout='-1' is not valid; accepted: a number of seconds >= 0.001"),
        ("--message-bytes", "lots", "--message-bytes='lots' is not valid; accepted: a whole number"),
        ("--max-requests", "-5", "--max-requests='-5' is not valid"),
        ("--target-rps", "fast", "--target-rps='fast' is not valid; accepted: a number of requests per second"),
        ("--arrival-rate", "-5", "--arrival-rate='-5' is not valid; accepted: calls per second R > 0 in total"),
        ("--arrival-rate", "100:2000", "--arrival-rate='100:2000' is not valid; accepted: calls per second R > 0"),
        ("--arrival-rate", "100:2000:soon", "accepted: calls per second R > 0 in total (e.g. 500), a ramp"),
        ("--seed", "x", "--seed='x' is not valid"),
        ("--grpc-metadata", "novalue", "--grpc-metadata='novalue' is not valid; accepted: key=value"),
        ("--host", "http://127.0.0.1:1", "--host='http://127.0.0.1:1' is not valid; accepted: host:port"),
        ("--host", "127.0.0.1", "--host='127.0.0.1' is not valid; accepted: host:port"),
        ("--grpc-metadata", "team=équipe", "--grpc-metadata='team=…' is not valid; accepted: a value of printable"),
        ("-u", "-1", "-u/--users=-1 is not valid; accepted: a whole number >= 0"),
        ("--action", "soon:echo hi", "--action='soon:echo hi' is not valid; accepted: AT:COMMAND"),
        ("--action", "30s", "--action='30s' is not valid"),
        ("--action-failure", "halt", "--action-failure='halt' is not valid; accepted: continue or stop"),
        ("--action-timeout", "0", "--action-timeout='0' is not valid"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_option_the_value_and_what_is_accepted(option, value, message):
    argv = ["--host", value] if option == "--host" else ["--host", HOST, option, value]
    if option.startswith("--action-"):
        argv += ["--action", "1s:true"]  # the action options are read with an action
    with pytest.raises(OptionError) as refused:
        settings_from_arguments(argv, environ={})
    line = str(refused.value)
    assert message in line and "\n" not in line, line


def test_an_arrival_rate_of_0_from_the_environment_is_refused_not_read_as_off():
    with pytest.raises(OptionError, match=r"^--arrival-rate='0' is not valid; accepted: calls per second R > 0"):
        settings_from_arguments(["--host", HOST], environ={"LOCUST_ARRIVAL_RATE": "0"})


@pytest.mark.parametrize(("option", "value"), [("--freshness-sample-rate", "0"), ("--freshness-poll-interval", "x")])
def test_a_bad_freshness_option_is_one_line(option, value):
    with pytest.raises(OptionError, match=f"^{option}={value!r} is not valid"):
        settings_from_arguments(["--host", HOST, option, value], environ={})


def test_a_freshness_slo_without_the_probe_is_refused():
    argv = ["--host", HOST, "--capacity-search", "--slo-visibility-p95-ms", "500", "--no-freshness"]
    with pytest.raises(OptionError, match=r"^--slo-visibility-p95-ms='500' is not valid"):
        settings_from_arguments(argv, environ={})


@pytest.mark.parametrize("bad", ["dns:///logs.example", "ipv4:127.0.0.1", "ipv6:[::1]", "unix:"])
def test_a_malformed_grpc_target_form_is_one_line(bad):
    with pytest.raises(OptionError) as refused:
        settings_from_arguments(["--host", bad], environ={})
    line = str(refused.value)
    assert line.startswith("--host") and repr(bad) in line and "accepted" in line and "\n" not in line, line


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--slo-visibility-p95-ms", "-1"),
        ("--slo-visibility-p95-ms", "nan"),
        ("--slo-p95-ms", "-1"),
        ("--slo-p95-ms", "inf"),
        ("--slo-failure-rate", "nan"),
        ("--capacity-start", "0"),
        ("--capacity-step", "x"),
        ("--capacity-precision", "2"),
    ],
)
@pytest.mark.parametrize("with_search", [False, True], ids=["without --capacity-search", "with --capacity-search"])
def test_a_bad_capacity_or_slo_value_is_refused_whatever_else_is_on_the_line(option, value, with_search):
    argv = ["--host", HOST, *(["--capacity-search"] if with_search else []), option, value]
    with pytest.raises(OptionError) as refused:
        settings_from_arguments(argv, environ={})
    line = str(refused.value)
    assert line.startswith(f"{option}={value!r} is not valid; accepted: ") and "\n" not in line, line


@pytest.mark.parametrize(("args", "settle", "timeout"),
                         [(["--audit-settle", "100", "--audit-timeout", "5"], "100", "5"),
                          (["--audit-timeout", "6"], "6", "6"),
                          (["--audit-settle", "4.9", "--audit-timeout", "5"], "4.9", "5")])  # fmt: skip
def test_a_settle_time_the_audit_timeout_cuts_short_is_refused(args, settle, timeout):
    """The barrier, the only proof of a loss, is written once the count stood still for --audit-settle and needs a
    flush of its own: with ``--audit-settle 100 --audit-timeout 5`` (or 4.9 of 5, a new user's case) a real loss could
    only ever be unsettled."""
    with pytest.raises(OptionError) as refused:
        settings_from_arguments(["--host", HOST, *args], environ={})
    line = str(refused.value)
    assert line.startswith(f"--audit-settle='{settle}' is not valid; accepted: at most half of --audit-timeout "
                           f"({timeout}): ") and "\n" not in line, line  # fmt: skip


def test_a_settle_time_below_the_timeout_or_with_no_audit_is_accepted():
    assert settings_from_arguments(["--host", HOST, "--audit-settle", "2.5", "--audit-timeout", "5"], environ={})
    assert settings_from_arguments(["--host", HOST, "--no-audit", "--audit-settle", "100", "--audit-timeout", "5"],
                                   environ={})  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["--freshness-poll-interval", "1e9"],
         "--freshness-poll-interval='1e9' is not valid; accepted: a number of seconds >= 0.01 and <= 10"),
        (["--freshness-poll-interval", "0.001"], "--freshness-poll-interval='0.001' is not valid; accepted: "),
        (["--freshness-sample-rate", "1e9"],
         "--freshness-sample-rate='1e9' is not valid; accepted: a number of samples per second > 0 and <= 1000"),
        (["--freshness-sample-rate", "inf"], "--freshness-sample-rate='inf' is not valid; accepted: "),
        (["--freshness-query-share", "1e-300"],
         "--freshness-query-share='1e-300' is not valid; accepted: a number of percent >= 0.01 and <= 100"),
        (["--capacity-search", "--slo-visibility-p95-ms", "1e300"],
         "--slo-visibility-p95-ms='1e300' is not valid; accepted: a number of milliseconds >= 0 and <= 3600000"),
        (["--capacity-search", "--slo-p95-ms", "1e300"],
         "--slo-p95-ms='1e300' is not valid; accepted: a number of milliseconds > 0 and <= 3600000"),
        (["--capacity-search", "--capacity-start", "1e12"],
         "--capacity-start='1e12' is not valid; accepted: a number of calls per second >= 1 and <= 10000000"),
        (["--target-rps", "1e15"], "--target-rps='1e15' is not valid; accepted: a number of requests per second "
         "(0: no pacing) >= 0 and <= 10000000"),
        (["--arrival-rate", "1e15"], "--arrival-rate='1e15' is not valid; accepted: calls per second R > 0 in total "
         "(e.g. 500), a ramp START:END:DURATION (e.g. 100:2000:60s), or steps START:END:DURATION:STEPS (e.g. "
         "100:2000:60s:10), each rate at most 10000000"),
        (["--arrival-rate", "100:1e15:10s"], "--arrival-rate='100:1e15:10s' is not valid; accepted: calls per second"),
        (["--action", "1s:true", "--action-timeout", "1e300"],
         "--action-timeout='1e300' is not valid; accepted: a number of seconds > 0 and <= 86400"),
    ],
)  # fmt: skip
def test_an_absurd_number_is_refused_with_the_range_its_option_accepts(argv, line):
    """``--freshness-poll-interval 1e9`` polled once in 30 years and ``--freshness-sample-rate 1e9`` sampled every
    call, both accepted silently (a new user); each numeric option now states its range: its upper bound where a
    larger value means nothing (the latency histograms end at an hour; gevent's timers at a day), NaN and infinity
    nowhere, zero only where it means "off"."""
    with pytest.raises(OptionError) as refused:
        settings_from_arguments(["--host", HOST, *argv], environ={})
    assert str(refused.value).startswith(line) and "\n" not in str(refused.value), str(refused.value)


FRESHNESS_VALUES = {"--freshness-sample-rate": "5", "--freshness-poll-interval": "0.2", "--freshness-query-share": "3"}


def test_every_freshness_option_has_a_case_below():
    assert set(FRESHNESS_VALUES) == {option.flag for option in OPTIONS if option.group == FRESHNESS and
                                     option.kind != "switch"}  # fmt: skip


@pytest.mark.parametrize(("flag", "value"), FRESHNESS_VALUES.items())
def test_a_freshness_option_with_no_freshness_is_refused_not_ignored(flag, value):
    """``--no-freshness --freshness-sample-rate 5`` measured nothing and said nothing of the rate asked for."""
    settings_from_arguments(["--host", HOST, flag, value], environ={})  # alone: accepted
    with pytest.raises(OptionError) as refused:
        settings_from_arguments(["--host", HOST, "--no-freshness", flag, value], environ={})
    assert str(refused.value) == (f"{flag}={value!r} is not valid; accepted: with the freshness probe only "
                                  "(--no-freshness turns it off: it would have no effect)")  # fmt: skip
    settings_from_arguments(["--host", HOST, "--no-freshness"], environ={"LOCUST_FRESHNESS_SAMPLE_RATE": "20"})


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["--no-audit", "--audit-allow-loss"],
         "--audit-allow-loss=True is not valid; accepted: with the delivery audit only (--no-audit turns it off: it "
         "would have no effect)"),
        (["--no-audit", "--no-freshness", "--audit-timeout", "30"],
         "--audit-timeout='30' is not valid; accepted: with the delivery audit or the freshness probe only "
         "(--no-audit and --no-freshness turn both off: it would have no effect)"),
        (["--no-audit", "--no-freshness", "--audit-settle", "2"], "--audit-settle='2' is not valid; accepted: with "),
    ],
)  # fmt: skip
def test_an_audit_option_with_no_audit_is_refused_where_nothing_reads_it(argv, line):
    with pytest.raises(OptionError) as refused:
        settings_from_arguments(["--host", HOST, *argv], environ={})
    assert str(refused.value).startswith(line), str(refused.value)
    # without an audit the freshness probe still waits by --audit-timeout and --audit-settle
    assert settings_from_arguments(["--host", HOST, "--no-audit", "--audit-timeout", "30"], environ={})


def test_a_poll_interval_longer_than_half_the_freshness_slo_is_refused():
    """Each figure is late by up to the poll interval: a 500 ms SLO judged on polls 0.3 s apart judges the polls."""
    argv = ["--host", HOST, "--capacity-search", "--slo-visibility-p95-ms", "500"]
    with pytest.raises(OptionError) as refused:
        settings_from_arguments([*argv, "--freshness-poll-interval", "0.3"], environ={})
    assert str(refused.value) == ("--freshness-poll-interval='0.3' is not valid; accepted: at most half of "
                                  "--slo-visibility-p95-ms (500 ms): each visibility figure is late by up to the "
                                  "poll interval")  # fmt: skip
    assert settings_from_arguments([*argv, "--freshness-poll-interval", "0.25"], environ={})


@pytest.mark.parametrize(
    "argv",
    [["--freshness-poll-interval", "0.01"], ["--freshness-poll-interval", "10"], ["--freshness-sample-rate", "1000"],
     ["--freshness-query-share", "0.01"], ["--target-rps", "10000000"], ["--arrival-rate", "1:10000000:10s"],
     ["--capacity-search", "--slo-visibility-p95-ms", "3600000"]],
)  # fmt: skip
def test_the_ends_of_each_stated_range_are_accepted(argv):
    assert settings_from_arguments(["--host", HOST, *argv], environ={})


@pytest.mark.parametrize(("args", "waits"), [("--no-audit --no-freshness", False), ("--no-audit", True), ("", True)])
def test_make_headless_on_the_embedded_server_gives_the_audit_its_wait_only_when_something_waits(args, waits):
    """``make headless`` adds ``--audit-timeout 120`` for the embedded server, which would be refused with both
    ``--no-audit`` and ``--no-freshness``: the dry run's Locust command line has it only when the audit or the probe
    runs."""
    dry_run = subprocess.run(["make", "-n", "headless", f"ARGS={args}"], cwd=ROOT, capture_output=True, text=True,
                             check=True, timeout=60)  # fmt: skip
    locust_line = next(line for line in dry_run.stdout.splitlines() if "locust -f" in line)
    assert ("--audit-timeout 120" in locust_line) is waits, locust_line
