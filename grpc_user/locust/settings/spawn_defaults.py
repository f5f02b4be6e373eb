"""A worker reads the options of each spawn message once, not once per option.

Locust's worker keeps the master's custom options from every spawn message by testing each of its
~120 options against ``locust.argument_parser.default_args_dict()``, which builds Locust's whole
argument parser anew on every call (9 ms here): about a second per spawn message in which the
worker's hub runs nothing else. A worker that joins a running test gets several (one per
rebalancing), misses its heartbeats, and the master marks it, or the worker already running,
missing: its counts never arrive and the audit sees acknowledged logs as unexpected or lost. The
defaults do not change while a process runs, so they are computed once.
"""

from __future__ import annotations

import functools

from locust import argument_parser


def read_default_options_once() -> None:
    """Memoize ``argument_parser.default_args_dict`` for this process (idempotent)."""
    if not hasattr(argument_parser.default_args_dict, "cache_info"):
        argument_parser.default_args_dict = functools.cache(argument_parser.default_args_dict)
