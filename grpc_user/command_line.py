"""``python -m grpc_user``: the seed clients' health and single-write endpoints, in a terminal."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from grpc_user.channels import LB_POLICIES
from grpc_user.client import LogClient
from grpc_user.levels import LEVEL_NAMES
from grpc_user.results import HealthResult, QueryResult, WriteResult
from grpc_user.settings import DEFAULT_TIMEOUT_SECONDS, default_target


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def meta_pair(text: str) -> tuple[str, str]:
    """Parse ``key=value`` for ``--meta``."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"invalid --meta {text!r}; accepted: key=value")
    return key, value


def build_parser() -> OneLineParser:
    """The command line: health, write and query over one LogClient."""
    parser = OneLineParser(prog="python -m grpc_user", description=__doc__)
    parser.add_argument("--target", default=None,
                        help="host:port, grpc://host:port, grpcs://host:port or one of grpc's forms: dns:///host:port, "
                        "ipv4:a:port,b:port, ipv6:[a]:port, unix:path (grpcs+ before one: TLS); default from "
                        "GRPC_SERVER_HOST/PORT")  # fmt: skip
    parser.add_argument(
        "--grpc-lb",
        default="",
        choices=["", *LB_POLICIES],
        help="grpc's load-balancing policy over the addresses the target resolves to",
    )
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS, help="per-call deadline in seconds")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    commands.add_parser("health", help="check that the target serves the LogService")

    write = commands.add_parser("write", help="send one WriteLog")
    write.add_argument("message")
    write.add_argument("--level", default="INFO", help=f"one of {', '.join(LEVEL_NAMES)}")
    write.add_argument("--service-name", default=None)
    write.add_argument("--trace-id", default=None)
    write.add_argument("--span-id", default=None)
    write.add_argument("--meta", type=meta_pair, action="append", default=[], metavar="KEY=VALUE")

    query = commands.add_parser("query", help="send one QueryLog")
    query.add_argument("--service-name", default=None)
    query.add_argument("--level", default=None, help=f"one of {', '.join(LEVEL_NAMES)}")
    query.add_argument("--trace-id", default=None)
    query.add_argument("--start-time", default=None, help="RFC 3339")
    query.add_argument("--end-time", default=None, help="RFC 3339")
    query.add_argument("--meta", type=meta_pair, action="append", default=[], metavar="KEY=VALUE")
    query.add_argument("--limit", type=int, default=10)
    query.add_argument("--offset", type=int, default=0)
    return parser


def run_command(client: LogClient, args: argparse.Namespace) -> WriteResult | QueryResult | HealthResult:
    """Make the call the command names."""
    if args.command == "health":
        return client.health()
    if args.command == "write":
        fields = {"service_name": args.service_name, "trace_id": args.trace_id, "span_id": args.span_id}
        return client.write_log(args.message, level=args.level, **fields, **dict(args.meta))
    return client.query_logs(
        service_name=args.service_name,
        level=args.level,
        trace_id=args.trace_id,
        start_time=args.start_time,
        end_time=args.end_time,
        limit=args.limit,
        offset=args.offset,
        metadata_filters=dict(args.meta),
    )


def describe(result: WriteResult | QueryResult | HealthResult) -> str:
    """Human-readable lines for a result."""
    if isinstance(result, HealthResult):
        state = "SERVING" if result.serving else "NOT SERVING"
        return f"{state} {result.target} via {result.method} in {result.latency_ms:.1f} ms: {result.detail}"
    if not result.success:
        return f"FAILED {result.error_message}"
    if isinstance(result, WriteResult):
        return f"OK log_id={result.log_id}"
    lines = [f"OK {len(result.logs)} of {result.total_count} matching logs"]
    for log in result.logs:
        meta = " ".join(f"{key}={value}" for key, value in sorted(log["metadata"].items()))
        lines.append(f"{log['timestamp']} {log['level']:<5} {log['service_name']} {log['message']!r} {meta}")
    return "\n".join(lines)


def succeeded(result: Any) -> bool:
    """Whether the command did what it was asked."""
    return result.serving if isinstance(result, HealthResult) else result.success


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; exit 0 on success, 1 on a failed call, 2 on bad input."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with LogClient(args.target or default_target(), timeout=args.timeout, lb_policy=args.grpc_lb) as client:
            result = run_command(client, args)
    except (ValueError, TypeError) as error:
        parser.error(str(error))
    shown = json.dumps(result.as_dict(), ensure_ascii=False, indent=2) if args.json else describe(result)
    sys.stdout.write(shown + "\n")
    return 0 if succeeded(result) else 1


if __name__ == "__main__":
    sys.exit(main())
