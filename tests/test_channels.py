"""Channels reconnect fast after a restart without capping how long a slow connection may take to open."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from tls_certs import make_ca, make_leaf

from grpc_user import LogClient
from grpc_user.channels import sync_channel
from grpc_user.pb import log_service_pb2 as pb
from grpc_user.security import Security
from grpc_user.target import parse_target
from reference_server.process import start_server_process

# Real Locust runs or processes of several seconds each: make test runs them, make test-fast does not.
pytestmark = pytest.mark.slow

HANDSHAKE_DELAY_SECONDS = 1.5


class SlowHandshakeProxy:
    """A loopback TCP proxy that holds each connection's first bytes for a while: a distant or busy server."""

    def __init__(self, upstream: tuple[str, int], delay: float) -> None:
        self._upstream, self._delay = upstream, delay
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.target = f"127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self._upstream)
            threading.Thread(target=self._pump, args=(client, server, self._delay), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, 0.0), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, first_delay: float) -> None:
        delay = first_delay
        try:
            while data := source.recv(65536):
                time.sleep(delay)
                delay = 0.0
                sink.sendall(data)
        except OSError:
            pass
        finally:
            sink.close()

    def close(self) -> None:
        self._listener.close()


def test_a_tls_handshake_that_takes_seconds_still_connects(tmp_path):
    """A distant or busy server: its TLS handshake takes 1.5 s, longer than the reconnect backoff's cap."""
    ca = make_ca(tmp_path, "ca")
    leaf = make_leaf(tmp_path, "server", ca, dns=["localhost"], ips=["127.0.0.1"])
    server = start_server_process("--tls-cert", leaf.cert, "--tls-key", leaf.key)
    proxy = SlowHandshakeProxy(("127.0.0.1", server.port), HANDSHAKE_DELAY_SECONDS)
    channel = sync_channel(parse_target(f"grpcs://{proxy.target}"), Security(ca=ca[0].cert))
    request = pb.WriteLogRequest(log_entry=pb.LogEntry(message="through a slow link")).SerializeToString()
    try:
        started = time.monotonic()
        answer = channel.unary_unary("/logservice.LogService/WriteLog")(request, timeout=8)
        assert pb.WriteLogResponse.FromString(answer).success
        assert time.monotonic() - started >= HANDSHAKE_DELAY_SECONDS
    finally:
        channel.close()
        proxy.close()
        server.kill()


def test_a_restarted_server_is_reached_again_within_about_a_second(tmp_path):
    first = start_server_process("--flush-period", "0.1")
    port = first.port
    with LogClient(first.target, timeout=2) as client:
        assert client.write_log("before").success
        first.kill()
        assert not client.write_log("while it is down").success
        time.sleep(3)  # the channel backs off between attempts while the server is gone
        second = start_server_process("--port", str(port), "--flush-period", "0.1")
        try:
            restarted = time.monotonic()
            while not client.write_log("after the restart").success:
                assert time.monotonic() - restarted < 2.5, "the channel did not reconnect within its 1 s backoff"
                time.sleep(0.05)
        finally:
            second.kill()
