"""Whether a failed call's request can have left the client: from the channel's connectivity, not error strings.

gRPC writes a request only on a READY connection. A channel that was not READY when a call started and did not
reach READY before the call failed never wrote it: the call is provably rejected. Any other failure (a status the
transport can produce, such as UNAVAILABLE, CANCELLED, DEADLINE_EXCEEDED, INTERNAL, a reset) leaves the request's
fate unknown: in doubt.

``ConnectionWatch`` is fed every connectivity change of one channel (``observe``) and counts the changes that may
have passed through READY: READY itself, and the changes it might have missed (the same state seen twice, IDLE,
which a channel reaches when its connection closes, SHUTDOWN). Only CONNECTING and TRANSIENT_FAILURE are connection
attempts that provably failed. A call reads ``current`` when it starts (one attribute read, its mark) and asks
``never_sent(mark)`` only when it fails.
"""

from __future__ import annotations

import asyncio
import logging
import threading

import grpc
import grpc.aio

logger = logging.getLogger(__name__)
State = grpc.ChannelConnectivity
# The states of a channel that has not connected: no request can have been written since.
NOT_CONNECTED = frozenset({State.CONNECTING, State.TRANSIENT_FAILURE})


# A call's mark: the count of possible connections times two, plus one when the channel was READY.
Mark = int


class ConnectionWatch:
    """The connectivity of one channel as far as a failed call needs it (fed by ``observe``)."""

    __slots__ = ("state", "connections", "current", "_changed")

    def __init__(self) -> None:
        self.state: grpc.ChannelConnectivity | None = None
        self.connections = 0
        self.current: Mark = 0  # the mark of a call starting now
        self._changed = threading.Condition()

    def observe(self, state: grpc.ChannelConnectivity) -> None:
        """A connectivity change of the channel (gRPC reports each change, but two quick ones may arrive as one);
        the first call gives the state the watch starts from."""
        if self.state is None:
            possible = state is State.READY
        else:
            possible = state not in NOT_CONNECTED or state == self.state
        self.connections += possible
        self.state = state
        self.current = self.connections << 1 | (state is State.READY)
        with self._changed:
            self._changed.notify_all()

    def catch_up(self, timeout: float) -> None:
        """Wait (at most ``timeout`` s) until the watch has seen the channel try to connect.

        For a blocking channel, whose changes ``subscribe`` delivers from another thread and may deliver after a
        call that failed at once (a refused connection) has returned; the asyncio watch needs none.
        """
        with self._changed:
            self._changed.wait_for(lambda: self.state not in (None, State.IDLE), timeout)

    def never_sent(self, mark: Mark) -> bool:
        """True when a call started at ``mark`` and failing now provably never wrote its request."""
        return not mark & 1 and self.connections == mark >> 1 and self.state in NOT_CONNECTED


def watch_sync_channel(channel: grpc.Channel) -> ConnectionWatch:
    """A watch fed by ``channel.subscribe`` (gRPC's own polling thread); ``channel.unsubscribe(watch.observe)``.

    Its changes arrive from another thread, after the call that caused them at times: a failed call asks
    ``catch_up`` first. Were a READY delivered only after a call sent on it had failed, that call would be counted
    rejected; the asyncio watch (the Locust client's) sees changes and answers in the order gRPC made them."""
    watch = ConnectionWatch()
    channel.subscribe(watch.observe, try_to_connect=False)
    return watch


async def watch_aio_channel(channel: grpc.aio.Channel, watch: ConnectionWatch) -> None:
    """Feed ``watch`` every connectivity change of an asyncio channel until the channel closes (or the task is
    cancelled)."""
    state = channel.get_state(try_to_connect=False)
    while state is not State.SHUTDOWN:
        watch.observe(state)
        try:
            await channel.wait_for_state_change(state)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a closed channel: nothing left to watch
            logger.debug("connectivity watch ended", exc_info=True)
            return
        state = channel.get_state(try_to_connect=False)
    watch.observe(state)
