"""grpc_user.channelz reads grpc's own calls per subchannel through cygrpc, a private grpc module (see
docs/architecture.md): this test fails first when a grpc upgrade changes it."""

from __future__ import annotations

from grpc_user import LogClient
from grpc_user.channelz import subchannel_calls
from reference_server import ReferenceServer, ServerSettings


def test_subchannel_calls_name_the_server_address_and_count_every_call_sent_to_it():
    with ReferenceServer(ServerSettings(port=0)) as server, LogClient(server.target) as client:
        for number in range(7):
            assert client.write_log(f"log {number}").success
        calls = {address: started for address, started in subchannel_calls().values()}
    assert calls[f"ipv4:{server.target}"] == 7, calls
