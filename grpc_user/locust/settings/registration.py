"""Register the suite's options with Locust, so they show in ``--help``, the web UI and ``LOCUST_*``."""

from __future__ import annotations

from typing import Any

from grpc_user.locust.settings.suite import DEFAULT_MIX, DEFAULT_TOKEN_ENV
from grpc_user.settings import DEFAULT_TIMEOUT_SECONDS, default_max_batch_size


def _add(parser: Any, flag: str, help_text: str, web_ui: bool = True, **kwargs: Any) -> None:
    env_var = "LOCUST_" + flag.lstrip("-").replace("-", "_").upper()
    parser.add_argument(flag, env_var=env_var, help=f"{help_text} [env {env_var}]", include_in_web_ui=web_ui, **kwargs)


def register_options(parser: Any) -> None:
    """Add every suite option to Locust's argument parser (``lifecycle.settings`` validates the values)."""
    batch_help = f"entries per BatchWriteLog, 1..{default_max_batch_size()} (MAX_BATCH_SIZE)"
    _add(parser, "--batch-size", batch_help, default="100")
    _add(parser, "--mix", "weights of the mixed workload's calls", default=DEFAULT_MIX)
    _add(parser, "--run-id", "tag every log with metadata run_id=<this>; default: generated and printed", default="")
    _add(parser, "--grpc-timeout", "deadline of every call, seconds", default=str(DEFAULT_TIMEOUT_SECONDS))
    _add(parser, "--message-bytes", "size of each log message, bytes", default="128")
    _add(parser, "--seed", "seed of the generated test data (per user: seed + user index); default random", default="")
    _add(parser, "--service-name", "service_name of the generated logs", default="locust-loadtest")
    _add(parser, "--max-requests", "stop after this many calls in total (0: no limit)", default="0")
    _add(
        parser,
        "--arrival-rate",
        "open model: calls start at this rate in total, on a clock that does not wait for "
        "answers; -u is then the most calls in flight; R, or a ramp START:END:DURATION[:STEPS]",
        default="",
    )
    _add(
        parser,
        "--capacity-search",
        "find the highest rate the service sustains: steps of the open model's "
        "arrival rate, a geometric ramp then a bisection; writes capacity.json beside the --csv files",
        action="store_true",
        default=False,
    )
    _add(parser, "--capacity-start", "first offered rate of the capacity search, calls/s", default="100")
    _add(parser, "--capacity-step", "seconds per step of the capacity search (the first fifth is warm-up)", default="6")
    _add(parser, "--capacity-precision", "the knee's relative half-width at which the search stops", default="0.1")
    _add(
        parser,
        "--slo-p95-ms",
        "capacity search: a step is bad above this p95 (from the scheduled start)",
        default="1000",
    )
    _add(
        parser,
        "--slo-failure-rate",
        "capacity search: a step is bad above this failure rate (0.01 = 1%%)",
        default="0.01",
    )
    _add(
        parser,
        "--slo-visibility-p95-ms",
        "capacity search: a step is bad when its logs' visibility latency p95 "
        "(acknowledgement to the first QueryLog that returns them) is above this; 0: no freshness SLO",
        default="0",
    )
    _add(
        parser,
        "--batch-sizes",
        "capacity search of the batch workload: one search per batch size, e.g. 10,100,500,1000",
        default="",
    )
    _add(
        parser,
        "--target-rps",
        "pacing (closed model): each user paces itself to its share of this many calls/s "
        "and waits for its answers, so a slow service lowers the rate; 0: no pacing",
        default="0",
    )
    _add(
        parser,
        "--grpc-connections",
        "gRPC channels (HTTP/2 connections) each Locust process opens to the "
        "target; each user keeps to one (user index modulo N)",
        default="1",
    )
    _add(
        parser,
        "--grpc-lb",
        "grpc's load-balancing policy over the addresses the target resolves to: round_robin "
        "or pick_first (grpc's default); e.g. with --host dns:///name:port or ipv4:a:port,b:port",
        default="",
    )
    _add(
        parser,
        "--no-audit",
        "skip the delivery audit at the end (targets without QueryLog)",
        action="store_true",
        default=False,
    )
    _add(parser, "--audit-timeout", "seconds to wait for acknowledged logs to be stored", default="15")
    _add(
        parser,
        "--audit-settle",
        "seconds the service must store nothing at all before the logs still missing "
        "count as lost (longer than the service's flush period, 5 s)",
        default="6",
    )
    _add(
        parser,
        "--no-freshness",
        "do not measure visibility latency (acknowledgement to the first QueryLog that returns a log)",
        action="store_true",
        default=False,
    )
    _add(
        parser,
        "--freshness-sample-rate",
        "acknowledged logs sampled per second in total for visibility latency",
        default="20",
    )
    _add(
        parser,
        "--freshness-poll-interval",
        "seconds between the freshness probe's queries: the error bound of visibility latency",
        default="0.1",
    )
    _add(
        parser,
        "--audit-allow-loss",
        "do not fail the run when acknowledged logs were lost",
        action="store_true",
        default=False,
    )
    # Actions run shell commands: command line or environment only, like the security settings.
    _add(
        parser,
        "--action",
        "AT:COMMAND: run COMMAND with the shell AT (a Locust timespan: 30s, 2m) after the test "
        "starts, on the master; every log carries the phase it was sent in and the audit reports each phase "
        "(repeatable)",
        action="append",
        default=[],
        web_ui=False,
    )
    _add(
        parser,
        "--action-failure",
        "what a failing action does: continue (reported) or stop (ends the test)",
        default="continue",
        web_ui=False,
    )
    _add(
        parser,
        "--action-timeout",
        "seconds an action may run before it is killed (reported; the test goes on)",
        default="300",
        web_ui=False,
    )
    # Security settings come from the command line or environment only: the web UI shows option values.
    _add(
        parser,
        "--grpc-ca",
        "PEM file of the CA that signed the server certificate (grpcs://)",
        default="",
        web_ui=False,
    )
    _add(parser, "--grpc-cert", "client certificate PEM for mutual TLS", default="", web_ui=False)
    _add(parser, "--grpc-key", "client private key PEM for mutual TLS", default="", web_ui=False)
    _add(
        parser, "--grpc-authority", "TLS server name / :authority to use instead of the host", default="", web_ui=False
    )
    _add(
        parser,
        "--grpc-metadata",
        "key=value sent with every call (repeatable)",
        action="append",
        default=[],
        web_ui=False,
    )
    _add(
        parser,
        "--grpc-token-env",
        "environment variable holding a bearer token for authorization",
        default=DEFAULT_TOKEN_ENV,
        web_ui=False,
    )
