"""Gevent-compatible unary calls over grpc.aio, on an asyncio loop that runs inside a greenlet.

Why this design (CPU per call is what limits a load generator):

* Locust's own gRPC example blocks a sync stub under ``grpc.experimental.gevent``: every call
  crosses grpc's gevent integration; this suite did so at first and measured 1.58x the CPU of a
  bare ``grpc.aio`` loop per WriteLog (``make bench``); this design measures 1.00x.
* Running grpc.aio in a separate OS thread makes the hub and that thread fight for the GIL and
  pays two cross-thread wake-ups per call.
* Here the asyncio loop runs in a *greenlet of the Locust process's own thread*: its selector is
  gevent's ``GeventSelector``, so when the loop has nothing to do it yields to the gevent hub
  instead of blocking the process. A user's call creates an asyncio task directly (same thread,
  no locks), wakes the loop with a gevent event (no syscall, coalesced) and waits on a gevent
  ``AsyncResult``. The only OS thread is grpc.aio's own completion-queue poller, as in a bare
  grpc.aio program; it must be a real thread, so the ``threading`` module that grpc's Cython
  layer sees is given a ``Thread`` that starts a native thread even under monkey-patching.

Nothing here starts before the first call: Locust's ``--processes`` forks first, then each
process builds its own loop, poller thread and channels. If the loop's greenlet ever dies, every
pending and later call fails at once with ``LoopStopped`` instead of waiting forever.
"""

from __future__ import annotations

import asyncio
import logging
import types
from collections.abc import Callable
from typing import Any

import gevent
import gevent.monkey
import grpc
import grpc.aio
from gevent.event import AsyncResult
from gevent.selectors import GeventSelector

from grpc_user.channels import aio_channel
from grpc_user.security import Security
from grpc_user.target import Target

logger = logging.getLogger(__name__)


class NativeThread:
    """The part of ``threading.Thread`` grpc's Cython layer uses, always on an OS thread."""

    def __init__(self, group: None = None, target: Callable[..., Any] | None = None, name: str | None = None,
                 args: tuple = (), kwargs: dict | None = None, *, daemon: bool | None = None) -> None:  # fmt: skip
        self._target, self._args, self._kwargs = target, args, kwargs or {}
        self.name, self.daemon = name or "grpc-native", daemon
        allocate_lock = gevent.monkey.get_original("_thread", "allocate_lock")
        self._running = allocate_lock()
        self._started = False

    def start(self) -> None:
        """Start the target on a new OS thread."""
        self._running.acquire()
        self._started = True
        gevent.monkey.get_original("_thread", "start_new_thread")(self._run, ())

    def _run(self) -> None:
        try:
            if self._target is not None:
                self._target(*self._args, **self._kwargs)
        finally:
            self._running.release()

    def is_alive(self) -> bool:
        """True from ``start`` until the target returns."""
        return self._started and self._running.locked()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the target to return (at most ``timeout`` seconds)."""
        if not self._started:
            return
        if self._running.acquire(True, -1 if timeout is None else timeout):
            self._running.release()


def _give_grpc_native_threads() -> None:
    """grpc.aio's completion-queue poller blocks in C: it must run on an OS thread, not a greenlet."""
    from grpc._cython import cygrpc

    if getattr(cygrpc.threading, "Thread", None) is NativeThread:
        return
    threading_for_grpc = types.ModuleType("threading")
    threading_for_grpc.__dict__.update(cygrpc.threading.__dict__)
    threading_for_grpc.Thread = NativeThread  # type: ignore[attr-defined]
    cygrpc.threading = threading_for_grpc


class LoopStopped(RuntimeError):
    """The bridge's asyncio loop no longer runs: no call of this process can complete."""


class WakeableSelector(GeventSelector):
    """gevent's selector with a way to end a ``select`` early from another greenlet."""

    def wake(self) -> None:
        """Make the current or next ``select`` return at once."""
        self._ready.set()


class PendingCall:
    """A coroutine running on the loop; ``result`` blocks only the calling greenlet."""

    __slots__ = ("_task", "_result")

    def __init__(self, task: asyncio.Task, result: AsyncResult) -> None:
        self._task, self._result = task, result

    def result(self) -> Any:
        """Wait for the outcome: its value, or the exception it raised."""
        return self._result.get()

    def cancel(self) -> None:
        """Cancel the coroutine (a call in flight ends with CANCELLED)."""
        self._task.cancel()


class GreenletLoop:
    """An asyncio event loop running in a greenlet of this process's thread."""

    def __init__(self) -> None:
        _give_grpc_native_threads()
        self._selector = WakeableSelector()
        self.loop = asyncio.SelectorEventLoop(self._selector)
        self._wake_pending = False
        self._pending: set[AsyncResult] = set()
        self.stopped_because = ""
        self._greenlet = gevent.spawn(self._run)
        self._greenlet.link(self._stopped)
        gevent.sleep(0)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def _stopped(self, greenlet: gevent.Greenlet) -> None:
        cause = repr(greenlet.exception) if greenlet.exception is not None else "run_forever returned"
        self.stopped_because = f"the gRPC bridge's asyncio loop stopped ({cause}); this process can make no more calls"
        logger.error("%s", self.stopped_because)
        pending, self._pending = self._pending, set()
        for result in pending:
            result.set_exception(LoopStopped(self.stopped_because))

    def _awake(self) -> None:
        self._wake_pending = False

    def submit(self, coroutine: Any) -> asyncio.Task:
        """Schedule a coroutine on the loop from any greenlet of this thread."""
        if self.stopped_because:
            coroutine.close()
            raise LoopStopped(self.stopped_because)
        task = self.loop.create_task(coroutine)
        if not self._wake_pending:
            self._wake_pending = True
            self.loop.call_soon(self._awake)
            self._selector.wake()
        return task

    def start(self, coroutine: Any) -> PendingCall:
        """Start a coroutine on the loop; its outcome is waited for with ``PendingCall.result``."""
        task = self.submit(coroutine)
        result = AsyncResult()
        self._pending.add(result)
        task.add_done_callback(lambda done: self._settle(result, done))
        return PendingCall(task, result)

    def run(self, coroutine: Any) -> Any:
        """Run a coroutine on the loop; block only the calling greenlet; an interrupted caller cancels it."""
        call = self.start(coroutine)
        try:
            return call.result()
        except BaseException:
            call.cancel()
            raise

    def _settle(self, result: AsyncResult, task: asyncio.Task) -> None:
        self._pending.discard(result)
        if task.cancelled():
            result.set_exception(asyncio.CancelledError())
        elif task.exception() is not None:
            result.set_exception(task.exception())
        else:
            result.set(task.result())


_loops: dict[int, GreenletLoop] = {}


def greenlet_loop() -> GreenletLoop:
    """This process's loop, created on first use (after any fork)."""
    import os

    loop = _loops.get(os.getpid())
    if loop is None:
        loop = _loops[os.getpid()] = GreenletLoop()
    return loop


class AioTransport:
    """One grpc.aio channel per target; ``unary`` blocks only the calling greenlet."""

    def __init__(self, target: Target, security: Security) -> None:
        self._loop = greenlet_loop()
        self._metadata = security.call_metadata() or None
        self._channel: grpc.aio.Channel = self._loop.run(_open(target, security))
        self._methods: dict[str, Any] = {}

    def _method(self, path: str) -> Any:
        method = self._methods.get(path)
        if method is None:
            method = self._methods[path] = self._channel.unary_unary(path)
        return method

    def start_unary(self, path: str, payload: bytes, timeout: float) -> PendingCall:
        """Send one unary call of serialized bytes; its result is the answer's bytes or a ``grpc.RpcError``."""
        return self._loop.start(_call(self._method(path), payload, timeout, self._metadata))

    def unary(self, path: str, payload: bytes, timeout: float) -> bytes:
        """One unary call of serialized bytes; raises ``grpc.RpcError`` (``grpc.aio.AioRpcError``)."""
        return self._loop.run(_call(self._method(path), payload, timeout, self._metadata))

    def close(self, grace: float | None = None) -> None:
        """Close the channel; calls in flight after ``grace`` seconds end with CANCELLED (a dead loop has none)."""
        if not self._loop.stopped_because:
            self._loop.run(self._channel.close(grace))


async def _open(target: Target, security: Security) -> grpc.aio.Channel:
    return aio_channel(target, security)


async def _call(method: Any, payload: bytes, timeout: float, metadata: Any) -> bytes:
    return await method(payload, timeout=timeout, metadata=metadata)


def shared_transport(run: Any, target: Target, security: Security) -> AioTransport:
    """The process's transport for a target (one HTTP/2 connection shared by every user)."""
    key = (target, security)
    if key not in run.transports:
        run.transports[key] = AioTransport(target, security)
    return run.transports[key]
