"""asyncio's selector for the bridge's event loop, whose turns gevent's hub runs: it never blocks.

Each file descriptor's libev watcher is started once, at ``register``. When one fires, the selector
notes the event and calls ``on_ready`` (the loop schedules a turn); ``select`` hands over what was
noted and returns at once, since the hub, not the selector, does the waiting.
"""

from __future__ import annotations

import selectors
from collections.abc import Callable
from typing import Any

import gevent

LIBEV_READ, LIBEV_WRITE = 1, 2


class HubSelector(selectors._BaseSelectorImpl):  # the base every stdlib selector builds on, as gevent's does
    """A selector fed by gevent's hub: libev watchers note what is ready and call ``on_ready``."""

    def __init__(self, on_ready: Callable[[], Any]) -> None:
        super().__init__()
        self._loop = gevent.get_hub().loop
        self._on_ready = on_ready
        self._watchers: dict[int, Any] = {}
        self._ready_events: dict[int, int] = {}

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        """Watch ``fileobj`` from now on (a bad descriptor raises ValueError)."""
        key = super().register(fileobj, events, data)
        flags = (LIBEV_READ if events & selectors.EVENT_READ else 0) | (
            LIBEV_WRITE if events & selectors.EVENT_WRITE else 0)  # fmt: skip
        try:
            watcher = self._loop.io(key.fd, flags)
        except OSError as error:
            super().unregister(fileobj)
            raise ValueError(f"invalid file descriptor {key.fd}") from error
        watcher.priority = self._loop.MAXPRI  # type: ignore[attr-defined]  # libev's: docs/architecture.md
        watcher.start(self._on_io, key.fd, pass_events=True)
        self._watchers[key.fd] = watcher
        return key

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        """Stop watching ``fileobj``."""
        key = super().unregister(fileobj)
        watcher = self._watchers.pop(key.fd)
        watcher.stop()
        watcher.close()
        self._ready_events.pop(key.fd, None)
        return key

    def _on_io(self, events: int, fd: int) -> None:
        mask = (selectors.EVENT_READ if events & LIBEV_READ else 0) | (
            selectors.EVENT_WRITE if events & LIBEV_WRITE else 0)  # fmt: skip
        self._ready_events[fd] = self._ready_events.get(fd, 0) | mask
        self._on_ready()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        """What became ready since the last call; never waits (``timeout`` is the hub's business)."""
        ready, self._ready_events = self._ready_events, {}
        keys = self._fd_to_key  # type: ignore[attr-defined]  # the base's own table: docs/architecture.md
        return [(keys[fd], mask & keys[fd].events) for fd, mask in ready.items() if fd in keys]

    def close(self) -> None:
        """Stop every watcher."""
        for watcher in self._watchers.values():
            watcher.stop()
            watcher.close()
        self._watchers.clear()
        super().close()
