"""The Locust plugin, and its composition root: importing ``grpc_user.locust`` (which any import of one of its
modules does first) registers the suite's options and every listener on Locust's events, as ``locust_plugins``
does; no module below imports listeners for their side effect.

Below the root: the test's lifecycle (``lifecycle``: a test's life in Locust's events, the one way it ends, the
stats reports), which calls the features; the features (``user``, ``workloads``, ``transport``, ``counts``,
``audit``, ``preflight``, ``freshness``, ``open_model``, ``actions``, ``capacity``, ``web``); at the bottom the
foundations every feature reads (``settings``, ``run``). Importing it loads Locust (and gevent's monkey-patching);
the client in ``grpc_user`` does not."""

from typing import Any

from locust import events

from grpc_user.locust.actions import runner as actions
from grpc_user.locust.capacity import search as capacity
from grpc_user.locust.lifecycle import listeners, stats_reports
from grpc_user.locust.lifecycle.master_watch import die_with_launcher_until_init
from grpc_user.locust.lifecycle.stop_signals import install_startup_sigint
from grpc_user.locust.settings.forked_workers import pick_ports_when_parsed
from grpc_user.locust.settings.registration import register_options
from grpc_user.locust.web import tabs as web_ui


def _add_options(parser: Any, **_: Any) -> None:
    """Locust's main parses its command line: the suite's options, its Ctrl-C until Locust's init, the fate of
    the ``--processes`` workers it is about to fork should it die before their init, and the free loopback port
    their master listens on."""
    register_options(parser)
    pick_ports_when_parsed(parser)
    install_startup_sigint()
    die_with_launcher_until_init()


def register(locust_events: Any) -> None:
    """Register the suite on Locust's events: its options, a test's life (first: its init checks the options), its
    figures on the stats reports, then each feature's own wiring."""
    locust_events.init_command_line_parser.add_listener(_add_options)
    listeners.register(locust_events)
    stats_reports.register(locust_events)
    actions.register(locust_events)
    capacity.register(locust_events)
    web_ui.register(locust_events)


register(events)
