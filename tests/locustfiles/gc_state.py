"""For tests only: the single workload, and the garbage collector's state as the test starts (one stderr line)."""

import gc
import json
import sys

from locust import events

from locustfiles.single import WriteLogUser  # noqa: F401

# Frozen before the plugin's init: a forked Locust's fork server froze its own imports (tests/forkserver.py).
FROZEN_BEFORE_INIT = gc.get_freeze_count()


@events.test_start.add_listener
def _print_gc_state(**_) -> None:
    state = {"frozen": gc.get_freeze_count() - FROZEN_BEFORE_INIT, "young_threshold": gc.get_threshold()[0]}
    print(f"GC_STATE {json.dumps(state)}", file=sys.stderr)
