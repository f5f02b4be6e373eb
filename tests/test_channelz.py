"""grpc_user.channelz reads grpc's own calls per subchannel through cygrpc, a private grpc module (see
docs/architecture.md): this test fails first when a grpc upgrade changes it."""

from __future__ import annotations

import grpc

from grpc_user import LogClient
from grpc_user.channelz import ChannelCalls, subchannel_calls
from reference_server import ReferenceServer, ServerSettings


def test_subchannel_calls_name_the_server_address_and_count_every_call_sent_to_it():
    with ReferenceServer(ServerSettings(port=0)) as server, LogClient(server.target) as client:
        for number in range(7):
            assert client.write_log(f"log {number}").success
        calls = {address: started for address, started in subchannel_calls().values()}
    assert calls[f"ipv4:{server.target}"] == 7, calls


def test_channel_calls_reads_the_channel_made_last_alone_and_the_process_when_two_are_new():
    """A failed call's proof that it was never sent reads its own channel's subchannels (ChannelCalls); two new
    channels to one address cannot be told apart, and then every channel of the process stands in (in doubt more
    often, never wrongly rejected)."""
    with ReferenceServer(ServerSettings(port=0)) as server:
        with LogClient(server.target) as busy:
            assert busy.write_log("on the first channel").success
            alone = grpc.insecure_channel(server.target, options=[("grpc_user.test", 1)])
            own = ChannelCalls(server.target)
            first = grpc.insecure_channel(server.target, options=[("grpc_user.test", 2)])
            second = grpc.insecure_channel(server.target, options=[("grpc_user.test", 3)])
            shared = ChannelCalls(server.target)
            assert own.channel_id is not None and shared.channel_id is None
            assert own.read() == {}  # not connected yet: no subchannel, whatever the other channel did
            assert sum(shared.read().values()) == 1  # the busy channel's call
            for channel in (alone, first, second):
                channel.close()
