"""Import this before anything imports Locust: Locust's modules load into the test process without gevent's
monkey-patching (Locust's own ``LOCUST_SKIP_MONKEY_PATCH``), so in-process servers keep real threads. conftest.py
imports it first, as importing any ``grpc_user.locust`` module imports Locust; Locust's parser and the plugin's pure
modules work unpatched, a user's calls do not: run Locust in a subprocess for those."""

from __future__ import annotations

import os

_SWITCH = "LOCUST_SKIP_MONKEY_PATCH"
_before = os.environ.get(_SWITCH)
os.environ[_SWITCH] = "1"
try:
    import locust  # noqa: F401
finally:
    if _before is None:  # the Locust subprocesses of later tests must patch as usual
        del os.environ[_SWITCH]
