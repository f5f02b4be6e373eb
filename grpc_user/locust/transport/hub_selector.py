"""asyncio's selector on gevent's hub, for the bridge's event loop: waiting for I/O yields to the hub.

Leaner than ``gevent.selectors.GeventSelector`` on the hot path, for the same contract. Each file
descriptor's libev watcher is started once, at ``register`` (GeventSelector stops and restarts it at
every ``select``), and a ``select`` that must not block returns what is ready without a round trip
through the hub, except every ``FAIR_TURNS``-th time in a row, so that a loop that never idles still
lets every greenlet run.
"""

from __future__ import annotations

import selectors
from typing import Any

import gevent
from gevent.event import Event

LIBEV_READ, LIBEV_WRITE = 1, 2
FAIR_TURNS = 16


class HubSelector(selectors._BaseSelectorImpl):  # the base every stdlib selector builds on, as gevent's does
    """A selector whose ``select`` waits on gevent's hub; ``wake`` ends a wait early from another greenlet."""

    def __init__(self) -> None:
        super().__init__()
        self._loop = gevent.get_hub().loop
        self._watchers: dict[int, Any] = {}
        self._ready_events: dict[int, int] = {}
        self._ready = Event()
        self._turns_without_yielding = 0

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
        watcher.priority = self._loop.MAXPRI
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
        self._ready.set()

    def wake(self) -> None:
        """Make the current or next ``select`` return at once."""
        self._ready.set()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        """What is ready; waits on the hub up to ``timeout`` seconds (None: until something is) when nothing is."""
        if timeout == 0 or self._ready.is_set():
            self._turns_without_yielding += 1
            if self._turns_without_yielding >= FAIR_TURNS:
                self._turns_without_yielding = 0
                gevent.sleep(0)
        else:
            self._turns_without_yielding = 0
            self._ready.wait(timeout)
        self._ready.clear()
        ready, self._ready_events = self._ready_events, {}
        keys = self._fd_to_key
        return [(keys[fd], mask & keys[fd].events) for fd, mask in ready.items() if fd in keys]

    def close(self) -> None:
        """Stop every watcher."""
        for watcher in self._watchers.values():
            watcher.stop()
            watcher.close()
        self._watchers.clear()
        super().close()
