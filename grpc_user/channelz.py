"""Calls as grpc itself counts them: channelz, read in this process.

grpc.aio gives no client call its peer, but grpc's channelz keeps, for every subchannel (one per
server address a channel connects to), how many calls it started. Summed per address over every
channel of the process, these say where the calls went, at no cost per call: a read costs about
0.3 ms per channel and per subchannel (a few ms for three replicas, tens of ms for 50 connections to two), so
it is made once per report interval, not per call. One channel's own subchannels (``ChannelCalls``) cost a
read of that channel and of each of its subchannels.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

from grpc._cython import cygrpc

logger = logging.getLogger(__name__)


def _top_channels(start: int = 0) -> Iterator[dict[str, Any]]:
    """Every top channel (a channel an application made) of the process with channelz id >= ``start``."""
    while True:
        page = json.loads(cygrpc.channelz_get_top_channels(start))
        channels = page.get("channel", [])
        yield from channels
        if page.get("end", True) or not channels:
            return
        start = max(int(channel["ref"]["channelId"]) for channel in channels) + 1


def _subchannel(subchannel_id: int) -> dict[str, Any] | None:
    """A subchannel's channelz data; None once it has closed."""
    try:
        data: dict[str, Any] = json.loads(cygrpc.channelz_get_subchannel(subchannel_id))["subchannel"]["data"]
    except ValueError:  # closed meanwhile
        return None
    return data


def _subchannel_ids(channel: dict[str, Any]) -> list[int]:
    return [int(ref["subchannelId"]) for ref in channel.get("subchannelRef", [])]


def subchannel_calls() -> dict[int, tuple[str, int]]:
    """Every live subchannel of this process: id -> (server address as grpc names it, calls started).

    The address is grpc's, unescaped: ``ipv4:127.0.0.1:50051``, ``ipv6:[::1]:50051``. A subchannel shared by
    several channels appears once. A subchannel that closes between two reads is skipped.
    """
    found: dict[int, tuple[str, int]] = {}
    for channel in _top_channels():
        for subchannel_id in _subchannel_ids(channel):
            if subchannel_id not in found and (data := _subchannel(subchannel_id)) is not None:
                found[subchannel_id] = (unquote(data.get("target", "")), int(data.get("callsStarted", 0)))
    return found


# The highest channelz id of a top channel that ``ChannelCalls`` has looked at: a new channel's id is above it.
_listed = 0
_listing = threading.Lock()


class ChannelCalls:
    """Calls started per subchannel of the channel to ``address`` made last (just before this object), or of every
    channel of the process when that channel cannot be told apart: two new channels to ``address`` (made by two
    threads at once), or none (channelz off). ``read()`` -> subchannel id -> calls started."""

    def __init__(self, address: str) -> None:
        global _listed
        with _listing:
            new = list(_top_channels(_listed + 1))
            _listed = max([_listed] + [int(channel["ref"]["channelId"]) for channel in new])
        ours = [channel for channel in new if channel["data"].get("target") in (address, f"dns:///{address}")]
        self.channel_id = int(ours[0]["ref"]["channelId"]) if len(ours) == 1 else None
        if self.channel_id is None:
            logger.debug(
                "channelz: %d new channels to %s; the process's calls stand in for its own", len(ours), address
            )

    def read(self) -> dict[int, int]:
        """Subchannel id -> calls started (each about 0.3 ms); a channel channelz no longer knows has none."""
        if self.channel_id is None:
            return {subchannel: calls for subchannel, (_, calls) in subchannel_calls().items()}
        try:
            channel = json.loads(cygrpc.channelz_get_channel(self.channel_id))["channel"]
        except ValueError:  # closed
            return {}
        started = {}
        for subchannel_id in _subchannel_ids(channel):
            if (data := _subchannel(subchannel_id)) is not None:
                started[subchannel_id] = int(data.get("callsStarted", 0))
        return started
