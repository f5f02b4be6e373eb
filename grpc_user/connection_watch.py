"""Whether a failed call's request can have left the client: from the channel's connectivity and grpc's own count of
calls started on a connection (channelz), not from error strings.

gRPC writes a request only on a READY connection, as a call started on one of the channel's subchannels (channelz
counts it: ``callsStarted``). A call failing now provably never wrote its request when all of these hold:

- the channel was not READY when the call started, as far as the watch had seen (``Mark.ready``);
- the watch has seen no change since then that may have passed through READY (``Mark.connections``): READY itself,
  the same state twice, IDLE (where a channel goes when its connection closes), SHUTDOWN; only CONNECTING and
  TRANSIENT_FAILURE are connection attempts that provably failed;
- the channel is not connected now (``live_state``, read when the call fails, not as delivered: gRPC delivers a
  blocking channel's changes from another thread, late, and merges those it could not deliver in time; an asyncio
  watch can run after the call's failure too);
- none of the channel's subchannels has started a call since the mark, and none of those the mark saw has gone
  (``Mark.started``, from ``grpc_user.channelz.ChannelCalls``): a READY the watch never saw (merged away, with the
  channel back to CONNECTING, a round_robin subchannel reconnecting at once) still left its count there;
- no subchannel is new since the mark while another call of the channel overlapped this one (``begin``): a new
  subchannel is the first connection attempt, or one opened anew after a subchannel that may have carried the call
  connected and closed (pick_first makes a new one per connection); only another call opens one anew. A channel not
  connected has a subchannel: none at all is a channel in between, in doubt too.

Every other failure (a status the transport can produce: UNAVAILABLE, CANCELLED, DEADLINE_EXCEEDED, INTERNAL, a
reset) leaves the request's fate unknown: in doubt. Subchannels can be shared (channels with the same target and
options), and a channel channelz cannot tell apart is read as the whole process: another channel's call started
meanwhile then makes a failure in doubt that may have been provable, never the other way round. So do the first
calls of a busy channel to a dead target: until the watch has seen the first subchannel, its calls overlap it.

A call takes its mark with ``begin`` and ends with ``end``, whatever its outcome (a few integer operations; the
blocking client holds a lock around them, its calls run in several threads), and asks ``never_sent`` only when it
fails; the channelz reads (about 0.3 ms for the channel and for each of its subchannels) happen on a connectivity
change and when a call that may be provably unsent fails.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import NamedTuple

import grpc
import grpc.aio

from grpc_user.channelz import ChannelCalls

logger = logging.getLogger(__name__)
State = grpc.ChannelConnectivity
# The states of a channel that has not connected: no request can have been written since.
NOT_CONNECTED = frozenset({State.CONNECTING, State.TRANSIENT_FAILURE})
_BY_NUMBER = {state.value[0]: state for state in State}


class Mark(NamedTuple):
    """What a call starting now needs to know when it fails: ``connections``, the watch's count of changes that may
    have passed through READY; ``ready``, whether the channel was READY; ``started``, calls started per subchannel
    of the channel (channelz id -> count) when the watch last saw a change."""

    connections: int
    ready: bool
    started: Mapping[int, int]


# A call's own mark: the watch's ``Mark`` when it began, its number among the channel's calls, and whether another
# call was in flight then.
CallMark = tuple[Mark, int, bool]


class ConnectionWatch:
    """The connectivity of one channel as far as a failed call needs it (fed by ``observe``; ``live_state`` reads
    the channel's state when a call fails; ``calls_started`` reads its subchannels' channelz counts)."""

    __slots__ = ("state", "connections", "current", "begun", "in_flight", "_live_state", "_calls_started")

    def __init__(self, live_state: Callable[[], grpc.ChannelConnectivity],
                 calls_started: Callable[[], Mapping[int, int]]) -> None:  # fmt: skip
        self.state: grpc.ChannelConnectivity | None = None
        self.connections = 0
        self._live_state = live_state
        self._calls_started = calls_started
        self.current = Mark(0, False, calls_started())  # the mark of a call starting now
        self.begun = 0  # calls begun on the channel
        self.in_flight = 0

    def observe(self, state: grpc.ChannelConnectivity) -> None:
        """A connectivity change of the channel (gRPC reports each change, but two quick ones may arrive as one);
        the first call gives the state the watch starts from."""
        if self.state is None:
            possible = state is State.READY
        else:
            possible = state not in NOT_CONNECTED or state == self.state
        self.connections += possible
        self.state = state
        ready = state is State.READY  # a READY mark proves nothing: no count to read
        self.current = Mark(self.connections, ready, {} if ready else self._calls_started())

    def begin(self) -> CallMark:
        """A call starts: its mark (``end`` when it has ended)."""
        self.begun += 1
        self.in_flight += 1
        return self.current, self.begun, self.in_flight > 1

    def end(self) -> None:
        """A call begun with ``begin`` has ended (answered or failed, classified)."""
        self.in_flight -= 1

    def never_sent(self, call: CallMark) -> bool:
        """True when a call begun at ``call`` (``begin``) and failing now provably never wrote its request."""
        mark, number, overlapped = call
        if mark.ready or self.connections != mark.connections or self._live_state() not in NOT_CONNECTED:
            return False
        now = self._calls_started()
        if not now or (now.keys() - mark.started.keys() and (overlapped or self.begun > number)):
            return False
        return mark.started.keys() <= now.keys() and all(
            calls <= mark.started.get(subchannel, 0) for subchannel, calls in now.items()
        )


def sync_state(channel: grpc.Channel) -> grpc.ChannelConnectivity:
    """A blocking channel's connectivity now, without trying to connect (grpc has no public read: its private
    ``Channel._channel.check_connectivity_state``, listed in docs/architecture.md)."""
    return _BY_NUMBER[channel._channel.check_connectivity_state(False)]  # type: ignore[attr-defined]


def watch_sync_channel(channel: grpc.Channel, address: str) -> ConnectionWatch:
    """A watch of the blocking channel just made to ``address`` (the target as given to grpc), fed by
    ``channel.subscribe`` (gRPC's own delivery thread); ``channel.unsubscribe(watch.observe)``."""
    watch = ConnectionWatch(lambda: sync_state(channel), ChannelCalls(address).read)
    channel.subscribe(watch.observe, try_to_connect=False)
    return watch


def aio_watch(channel: grpc.aio.Channel, address: str) -> ConnectionWatch:
    """A watch of the asyncio channel just made to ``address`` (the target as given to grpc), to be fed by
    ``watch_aio_channel``."""
    return ConnectionWatch(lambda: channel.get_state(try_to_connect=False), ChannelCalls(address).read)


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
