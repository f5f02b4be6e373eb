"""Gevent-compatible unary calls over grpc.aio, on an asyncio loop whose turns gevent's hub runs.

Why this design (CPU per call is what limits a load generator):

* Locust's own gRPC example blocks a sync stub under ``grpc.experimental.gevent``: every call
  crosses grpc's gevent integration; this suite did so at first and measured 1.58x the CPU of a
  bare ``grpc.aio`` loop per WriteLog.
* Running grpc.aio in a separate OS thread makes the hub and that thread fight for the GIL and
  pays two cross-thread wake-ups per call.
* Here the asyncio loop lives in the Locust process's own thread and gevent's hub runs its turns
  as callbacks (``HubLoop``): libev watches the loop's descriptors (``HubSelector``), so when the
  loop has nothing to do the hub runs the users. A user's call is made right in the user's
  greenlet (grpc.aio only schedules its own task on the loop: no coroutine or task of ours per
  call), asks the hub for a turn of the loop (coalesced, no syscall) and waits on a gevent
  ``AsyncResult``, which the turn that sees the answer sets. The only OS thread is grpc.aio's own
  completion-queue poller, as in a bare grpc.aio program; it must be a real thread, so the
  ``threading`` module that grpc's Cython layer sees is given a ``Thread`` that starts a native
  thread even under monkey-patching (and ``grpc_user.native_locks`` gives grpc native locks).

Nothing here starts before the first call: Locust's ``--processes`` forks first, then each
process builds its own loop, poller thread and channels. If the loop ever fails, every pending
and later call fails at once with ``LoopStopped`` instead of waiting forever.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
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
from grpc_user.connection_watch import aio_watch, watch_aio_channel
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
        self._result: AsyncResult[Any] = AsyncResult()
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


class HubLoop:
    """An asyncio event loop whose turns run as callbacks of gevent's hub, in this process's thread.

    Nothing blocks in a turn: the hub does all the waiting (libev watchers for the loop's descriptors,
    a timer for its earliest ``call_later``), so a call's completion wakes its user in the same hub pass,
    with no greenlet of the loop's own to switch to. asyncio has no public API for this: a turn is
    ``_run_once``, the step ``run_forever`` repeats, and the loop is marked running from the start.
    """

    def __init__(self) -> None:
        _give_grpc_native_threads()
        self._hub = gevent.get_hub()
        self._selector = HubSelector(self.wake)
        self.loop = asyncio.SelectorEventLoop(self._selector)
        self._turn_scheduled = False
        self._timer: Any = None
        self._unsettled: set[AsyncResult] = set()
        self.stopped_because = ""
        # Private asyncio names, listed in docs/architecture.md: as run_forever does; grpc.aio finds its loop running.
        self.loop._thread_id = gevent.monkey.get_original("_thread", "get_ident")()  # type: ignore[attr-defined]
        asyncio.events._set_running_loop(self.loop)

    def _turn(self) -> None:
        self._turn_scheduled = False
        if self.stopped_because:
            return
        try:
            self.loop._run_once()  # type: ignore[attr-defined]
        except BaseException as error:  # a callback's own exception is handled by asyncio: this is the loop's
            self.stop(error)
            return
        if self.loop._ready:  # type: ignore[attr-defined]
            self.wake()
        elif self.loop._scheduled:  # type: ignore[attr-defined]
            self._arm_timer(self.loop._scheduled[0].when() - self.loop.time())  # type: ignore[attr-defined]

    def _arm_timer(self, delay: float) -> None:
        if self._timer is not None:
            self._timer.close()
        self._timer = self._hub.loop.timer(max(delay, 0.0))
        self._timer.start(self.wake)

    def stop(self, cause: BaseException) -> None:
        """The loop can run no more (``cause``): every pending and later call fails at once with ``LoopStopped``."""
        self.stopped_because = (f"the gRPC bridge's asyncio loop stopped ({cause!r}); "
                                "this process can make no more calls")  # fmt: skip
        logger.error("%s", self.stopped_because)
        pending, self._unsettled = self._unsettled, set()
        for result in pending:
            result.set_exception(LoopStopped(self.stopped_because))

    def check_running(self) -> None:
        """Raise ``LoopStopped`` when the loop is gone: nothing scheduled now would ever run."""
        if self.stopped_because:
            raise LoopStopped(self.stopped_because)

    def wake(self) -> None:
        """Have the hub run a turn of the loop soon (once however many calls were scheduled meanwhile)."""
        if not self._turn_scheduled:
            self._turn_scheduled = True
            self._hub.loop.run_callback(self._turn)

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


_loops: dict[int, HubLoop] = {}


def hub_loop() -> HubLoop:
    """This process's loop, created on first use (after any fork)."""
    loop = _loops.get(os.getpid())
    if loop is None:
        loop = _loops[os.getpid()] = HubLoop()
    return loop


class AioTransport:
    """One grpc.aio channel; ``unary`` blocks only the calling greenlet; ``watch`` follows the channel's
    connectivity (whether a failed call's request can have left: ``grpc_user.connection_watch``).

    ``lb_policy``: grpc's load-balancing policy ('' for its default); ``own_connections``: connections of the
    channel's own, not shared with the process's other channels to the same target.
    """

    def __init__(self, target: Target, security: Security, *, lb_policy: str = "",
                 own_connections: bool = False) -> None:  # fmt: skip
        self._loop = hub_loop()
        self._metadata = security.call_metadata() or None
        self._channel: grpc.aio.Channel = self._loop.run(_open(target, security, lb_policy, own_connections))
        self._methods: dict[str, Any] = {}
        self.watch = aio_watch(self._channel, target.address)
        self._watching = self._loop.submit(watch_aio_channel(self._channel, self.watch))

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
        """One unary call of serialized bytes; raises ``grpc.RpcError`` (``grpc.aio.AioRpcError``). Counted by the
        watch as in flight (the audit's and the probe's calls open connections too)."""
        self.watch.begin()
        try:
            return self.start_unary(path, payload, timeout).wait()
        finally:
            self.watch.end()

    def close(self, grace: float | None = None) -> None:
        """Close the channel; calls in flight after ``grace`` seconds end with CANCELLED (a dead loop has none)."""
        if not self._loop.stopped_because:
            self._watching.cancel()
            self._loop.run(self._channel.close(grace))


async def _open(target: Target, security: Security, lb_policy: str, own_connections: bool) -> grpc.aio.Channel:
    return aio_channel(target, security, lb_policy=lb_policy, own_connections=own_connections)


def _answer(call: grpc.aio.UnaryUnaryCall) -> bytes:
    """A finished call's answer, or its error raised, exactly as ``await call`` would give them."""
    response = call._call_response  # type: ignore[attr-defined]  # private: docs/architecture.md
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


TransportKey = tuple[Target, Security, str, int, int]


class Transports:
    """The channels a Locust process keeps to its targets for a test: ``shared`` opens each on first use; the end of
    the test ``take``s them for its audit and ``close``s them once nothing uses them any more."""

    def __init__(self) -> None:
        self._open: dict[TransportKey, AioTransport] = {}

    def shared(self, target: Target, security: Security, *, lb_policy: str = "", connections: int = 1,
               user_number: int = 0) -> AioTransport:  # fmt: skip
        """One of the process's ``connections`` channels to a target: the one user ``user_number`` keeps to (its
        number modulo ``connections``). With one, every user shares one channel (one HTTP/2 connection per server it
        reaches); with more, each channel opens connections of its own (grpc would otherwise share them)."""
        key = (target, security, lb_policy, connections, user_number % connections)
        transport = self._open.get(key)
        if transport is None:
            transport = self._open[key] = AioTransport(target, security, lb_policy=lb_policy,
                                                       own_connections=connections > 1)  # fmt: skip
        return transport

    def take(self) -> Transports:
        """The channels open now, handed over (to the audit of the test that opened them); a next test opens its
        own."""
        taken = Transports()
        taken._open, self._open = self._open, {}
        return taken

    def close(self, grace: float = 1.0) -> None:
        """Close every channel (calls in flight after ``grace`` seconds end with CANCELLED); a closed grpc.aio
        channel lets go of its connection once its objects are collected."""
        closing, self._open = self._open, {}
        for transport in closing.values():
            transport.close(grace=grace)
        if closing:
            gc.collect()
