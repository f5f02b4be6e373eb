"""``--processes``: the master that its forked workers connect to listens on a free loopback port.

Locust's master binds ``--master-bind-host`` ``*`` and port 5557 by default, so two ``--processes`` runs on one
machine joined each other: the second's master failed to bind (an RPCError traceback), its forked workers joined the
first's master (and died on its User classes, a ``KeyError`` traceback), and the first run's audit then waited for
final counts that never came: a false INCOMPLETE, exit 4. The forked workers are this machine's own processes: the
master binds 127.0.0.1 (not every interface), and with Locust's default master ports a port the system picks free;
the workers are forked knowing it. Ports or hosts the user chose are left as given (``--master-bind-port`` must
then equal ``--master-port``: ``suite._check_forked_workers_port``).
"""

from __future__ import annotations

import argparse
import socket
from typing import Any

# Locust's defaults for --master-port and --master-bind-port, --master-host and --master-bind-host.
LOCUST_MASTER_PORT = 5557
LOCUST_MASTER_HOST = "127.0.0.1"
LOCUST_MASTER_BIND_HOST = "*"


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the system's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOCUST_MASTER_HOST, 0))
        return int(probe.getsockname()[1])


def use_free_port_for_forked_workers(options: argparse.Namespace) -> None:
    """With ``--processes`` (not ``--worker``): the master binds 127.0.0.1 where ``--master-bind-host`` is Locust's
    default, every interface (spawn messages carry every option in cleartext, and the workers are forked here), and,
    at Locust's default master ports and hosts, on a free port, which ``--master-port`` gives its forked workers.
    Anything else is left as given."""
    if not getattr(options, "processes", None) or getattr(options, "worker", False):
        return
    defaults = (LOCUST_MASTER_PORT, LOCUST_MASTER_PORT, LOCUST_MASTER_HOST, LOCUST_MASTER_BIND_HOST)
    given = (options.master_port, options.master_bind_port, options.master_host, options.master_bind_host)
    if given == defaults:
        options.master_port = options.master_bind_port = free_loopback_port()
    if options.master_bind_host == LOCUST_MASTER_BIND_HOST:
        options.master_bind_host = LOCUST_MASTER_HOST


def pick_ports_when_parsed(parser: Any) -> None:
    """Have ``parser`` (Locust's, as ``init_command_line_parser`` hands it: Locust's main forks the ``--processes``
    workers right after it parses, with no event between) apply ``use_free_port_for_forked_workers`` to what it
    parses."""
    parse_args = parser.parse_args

    def parse_and_pick(*args: Any, **kwargs: Any) -> Any:
        options = parse_args(*args, **kwargs)
        use_free_port_for_forked_workers(options)
        return options

    parser.parse_args = parse_and_pick
