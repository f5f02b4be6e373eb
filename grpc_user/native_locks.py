"""grpc imported with native locks when gevent has monkey-patched ``threading`` (a Locust process).

grpc makes some ``threading.RLock`` objects when it is imported and takes them on every call (grpc.aio's
global state, twice per call). Under monkey-patching they would be gevent's pure-Python RLock, several
times dearer, for locks that guard counters shared with grpc's own OS threads and are never held across
a greenlet switch: the native RLock is the right lock for them.
"""

from __future__ import annotations

import importlib
import sys


def import_grpc_with_native_locks() -> None:
    """Import grpc now, with ``threading.RLock`` native during the import (a no-op when not patched or imported)."""
    monkey = sys.modules.get("gevent.monkey")
    if "grpc" in sys.modules or monkey is None or not monkey.is_module_patched("threading"):
        return
    import threading

    patched = threading.RLock
    threading.RLock = monkey.get_original("_thread", "RLock")
    try:
        importlib.import_module("grpc")
        importlib.import_module("grpc.aio")
    finally:
        threading.RLock = patched


import_grpc_with_native_locks()
