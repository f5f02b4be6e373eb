"""Gevent-compatible unary calls over grpc.aio, on an asyncio loop that runs inside a greenlet.

Why this design (CPU per call is what limits a load generator):

* Locust's own gRPC example blocks a sync stub under ``grpc.experimental.gevent``: every call
  crosses grpc's gevent integration; this suite did so at first and measured 1.58x the CPU of a
  bare ``grpc.aio`` loop per WriteLog.
* Running grpc.aio in a separate OS thread makes the hub and that thread fight for the GIL and
  pays two cross-thread wake-ups per call.
* Here the asyncio loop runs in a *greenlet of the Locust process's own thread*: its selector
  (``HubSelector``) waits on the gevent hub, so when the loop has nothing to do the hub runs the
  users. A user's call is made right in the user's greenlet (grpc.aio only schedules its own task
  on the loop: no coroutine or task of ours per call), wakes the loop with a gevent event (no
  syscall, coalesced) and waits on a gevent ``AsyncResult``. The only OS thread is grpc.aio's own
  completion-queue poller, as in a bare grpc.aio program; it must be a real thread, so the
  ``threading`` module that grpc's Cython layer sees is given a ``Thread`` that starts a native
  thread even under monkey-patching (and ``grpc_user.native_locks`` gives grpc native locks).

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
from grpc._cython import cygrpc

from grpc_user.channels import aio_channel
from grpc_user.locust.transport.hub_selector import HubSelector
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
    if getattr(cygrpc.threading, "Thread", None) is NativeThread:
        return
    threading_for_grpc = types.ModuleType("threading")
    threading_for_grpc.__dict__.update(cygrpc.threading.__dict__)
    threading_for_grpc.Thread = NativeThread  # type: ignore[attr-defined]
    cygrpc.threading = threading_for_grpc


class LoopStopped(RuntimeError):
    """The bridge's asyncio loop no longer runs: no call of this process can complete."""


class PendingCall:
    """A call or coroutine running on the loop; ``result`` blocks only the calling greenlet."""

    __slots__ = ("_running", "_outcome", "_result", "_unsettled")

    def __init__(self, running: Any, outcome: Callable[[Any], Any], unsettled: set[AsyncResult]) -> None:
        self._running, self._outcome, self._unsettled = running, outcome, unsettled
        self._result = AsyncResult()
        unsettled.add(self._result)

    def settle(self, _done: Any = None) -> None:
        """Take the outcome (called on the loop once it is there): its value, or the exception it raised."""
        self._unsettled.discard(self._result)
        try:
            value = self._outcome(self._running)
        except BaseException as error:  # asyncio.CancelledError included
            self._result.set_exception(error)
        else:
            self._result.set(value)

    def result(self) -> Any:
        """Wait for the outcome: its value, or the exception it raised."""
        return self._result.get()

    def cancel(self) -> None:
        """Cancel it (a call in flight ends with CANCELLED)."""
        self._running.cancel()

    def wait(self) -> Any:
        """``result``, except that a caller interrupted meanwhile cancels it."""
        try:
            return self._result.get()
        except BaseException:
            self.cancel()
            raise


class GreenletLoop:
    """An asyncio event loop running in a greenlet of this process's thread."""

    def __init__(self) -> None:
        _give_grpc_native_threads()
        self._selector = HubSelector()
        self.loop = asyncio.SelectorEventLoop(self._selector)
        self._wake_pending = False
        self._unsettled: set[AsyncResult] = set()
        self.stopped_because = ""
        self._greenlet = gevent.spawn(self._run)
        self._greenlet.link(self._stopped)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def _stopped(self, greenlet: gevent.Greenlet) -> None:
        cause = repr(greenlet.exception) if greenlet.exception is not None else "run_forever returned"
        self.stopped_because = f"the gRPC bridge's asyncio loop stopped ({cause}); this process can make no more calls"
        logger.error("%s", self.stopped_because)
        pending, self._unsettled = self._unsettled, set()
        for result in pending:
            result.set_exception(LoopStopped(self.stopped_because))

    def _awake(self) -> None:
        self._wake_pending = False

    def check_running(self) -> None:
        """Raise ``LoopStopped`` when the loop is gone: nothing scheduled now would ever run."""
        if self.stopped_because:
            raise LoopStopped(self.stopped_because)

    def wake(self) -> None:
        """Make the loop run what was just scheduled on it (once per batch of calls, no syscall)."""
        if not self._wake_pending:
            self._wake_pending = True
            self.loop.call_soon(self._awake)
            self._selector.wake()

    def submit(self, coroutine: Any) -> asyncio.Task:
        """Schedule a coroutine on the loop from any greenlet of this thread."""
        if self.stopped_because:
            coroutine.close()
            raise LoopStopped(self.stopped_because)
        task = self.loop.create_task(coroutine)
        self.wake()
        return task

    def start(self, coroutine: Any) -> PendingCall:
        """Start a coroutine on the loop; its outcome is waited for with ``PendingCall.result``."""
        task = self.submit(coroutine)
        return self.follow(task, task, _task_result)

    def follow(self, running: Any, done: asyncio.Future, outcome: Callable[[Any], Any]) -> PendingCall:
        """A ``PendingCall`` for ``running``: once ``done`` is, its result is what ``outcome(running)`` gives."""
        pending = PendingCall(running, outcome, self._unsettled)
        done.add_done_callback(pending.settle)
        return pending

    def run(self, coroutine: Any) -> Any:
        """Run a coroutine on the loop; block only the calling greenlet; an interrupted caller cancels it."""
        return self.start(coroutine).wait()


def _task_result(task: asyncio.Task) -> Any:
    return task.result()


_loops: dict[int, GreenletLoop] = {}


def greenlet_loop() -> GreenletLoop:
    """This process's loop, created on first use (after any fork)."""
    import os

    loop = _loops.get(os.getpid())
    if loop is None:
        loop = _loops[os.getpid()] = GreenletLoop()  # known before the switch below: one loop, however many callers
        gevent.sleep(0)  # the loop's greenlet starts
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
        """Send one unary call of serialized bytes; its result is the answer's bytes or a ``grpc.RpcError``.

        The grpc.aio call is made right here, in the caller's greenlet: it only schedules its own task on the
        loop, so no coroutine or task of ours wraps it.
        """
        self._loop.check_running()
        call = self._method(path)(payload, timeout=timeout, metadata=self._metadata)
        self._loop.wake()
        return self._loop.follow(call, call._call_response, _answer)

    def unary(self, path: str, payload: bytes, timeout: float) -> bytes:
        """One unary call of serialized bytes; raises ``grpc.RpcError`` (``grpc.aio.AioRpcError``)."""
        return self.start_unary(path, payload, timeout).wait()

    def close(self, grace: float | None = None) -> None:
        """Close the channel; calls in flight after ``grace`` seconds end with CANCELLED (a dead loop has none)."""
        if not self._loop.stopped_because:
            self._loop.run(self._channel.close(grace))


async def _open(target: Target, security: Security) -> grpc.aio.Channel:
    return aio_channel(target, security)


def _answer(call: grpc.aio.UnaryUnaryCall) -> bytes:
    """A finished call's answer, or its error raised, exactly as ``await call`` would give them."""
    response = call._call_response
    if not response.cancelled():
        answer = response.result()
        if answer is not cygrpc.EOF:  # the common case, read directly; a failure is built by grpc itself below
            return answer
    awaiting = call.__await__()
    try:
        awaiting.send(None)
    except StopIteration as finished:
        return finished.value
    raise RuntimeError("the gRPC call was not finished")  # its response task is done: never reached


def shared_transport(run: Any, target: Target, security: Security) -> AioTransport:
    """The process's transport for a target (one HTTP/2 connection shared by every user)."""
    key = (target, security)
    if key not in run.transports:
        run.transports[key] = AioTransport(target, security)
    return run.transports[key]
