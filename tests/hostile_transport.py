"""A log service whose transport breaks calls on purpose, on loopback: the home of transport faults for tests.

``HostileLogService`` speaks the contract's three RPCs with the minimum of semantics: a write is stored (counted
by its ``run_id``) the moment it arrives, then answered after ``answer_after`` seconds, so a call cut meanwhile was
provably received. The faults around it:

- ``serve(service, max_connection_age_ms=…, grace_ms=…)``: the server closes each connection at that age, and
  cuts the calls still running after the grace (``UNAVAILABLE``), as servers behind load balancers do;
- ``goaway_during_a_call(server, service)``: a graceful stop (GOAWAY) once a call has arrived, then its calls cut;
- ``ResettingProxy``: a TCP proxy that resets the client's connection (RST) once a call has arrived;
- a deadline: ``answer_after`` longer than the client's timeout;
- ``SilentListener``: a port that accepts TCP and never speaks HTTP/2, so no request can leave the client;
- ``StreamRefuser``: an HTTP/2 peer that refuses every stream (RST_STREAM REFUSED_STREAM: processed none of it), after
  relaying its first connections to a real service.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
from collections import Counter
from collections.abc import Container, Iterator
from concurrent import futures

import grpc

from grpc_user.pb import log_service_pb2 as pb

SERVICE_NAME = "logservice.LogService"


class HostileLogService:
    """Stores each write on arrival (``received``, ``stored``), answers it after ``answer_after`` seconds, or at once
    with ``refuse`` (a gRPC status code: the service saying no, nothing stored)."""

    def __init__(self, answer_after: float = 0.0, refuse: grpc.StatusCode | None = None) -> None:
        self.answer_after = answer_after
        self.refuse = refuse
        self.received = 0
        self.stored: Counter[str] = Counter()
        self.arrived = threading.Event()
        self._lock = threading.Lock()

    def _store(self, entries: list[pb.LogEntry], context: grpc.ServicerContext) -> None:
        if self.refuse is not None:
            context.abort(self.refuse, "refused by the hostile service")
        with self._lock:
            self.received += 1
            self.stored.update(entry.metadata.get("run_id", "") for entry in entries)
        self.arrived.set()
        if self.answer_after:
            threading.Event().wait(self.answer_after)

    def write_log(self, request: pb.WriteLogRequest, context: grpc.ServicerContext) -> pb.WriteLogResponse:
        self._store([request.log_entry], context)
        return pb.WriteLogResponse(success=True, log_id="queued-hostile")

    def batch_write_log(self, request: pb.BatchWriteLogRequest,
                        context: grpc.ServicerContext) -> pb.BatchWriteLogResponse:  # fmt: skip
        entries = list(request.log_entries)
        self._store(entries, context)
        return pb.BatchWriteLogResponse(success=True, log_ids=["queued-hostile"] * len(entries))

    def query_log(self, request: pb.QueryLogRequest, context: grpc.ServicerContext) -> pb.QueryLogResponse:
        with self._lock:
            run_id = request.metadata_filters.get("run_id")
            total = sum(self.stored.values()) if run_id is None else self.stored[run_id]
        return pb.QueryLogResponse(success=True, total_count=total)

    def handler(self) -> grpc.GenericRpcHandler:
        """The generic handler of the three RPCs."""
        method = lambda call, request: grpc.unary_unary_rpc_method_handler(  # noqa: E731
            call, request_deserializer=request.FromString, response_serializer=_serialize
        )
        return grpc.method_handlers_generic_handler(SERVICE_NAME, {
            "WriteLog": method(self.write_log, pb.WriteLogRequest),
            "BatchWriteLog": method(self.batch_write_log, pb.BatchWriteLogRequest),
            "QueryLog": method(self.query_log, pb.QueryLogRequest),
        })  # fmt: skip


def _serialize(message: object) -> bytes:
    return message.SerializeToString()  # type: ignore[attr-defined]


def serve(service: HostileLogService, *, max_connection_age_ms: int = 0, grace_ms: int = 0,
          port: int = 0) -> tuple[grpc.Server, int]:  # fmt: skip
    """Start the service on 127.0.0.1 (a free port unless given); with an age, connections are closed at it."""
    options = []
    if max_connection_age_ms:
        options = [("grpc.max_connection_age_ms", max_connection_age_ms),
                   ("grpc.max_connection_age_grace_ms", grace_ms)]  # fmt: skip
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64), options=options)
    server.add_generic_rpc_handlers((service.handler(),))
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server, bound


@contextlib.contextmanager
def running(service: HostileLogService, **options: int) -> Iterator[str]:
    """``serve`` for the length of a ``with`` block; yields the target."""
    server, port = serve(service, **options)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None)


def goaway_during_a_call(server: grpc.Server, service: HostileLogService, grace: float = 0.1) -> threading.Thread:
    """Once a call has arrived, stop the server gracefully (GOAWAY), cutting the calls still running after ``grace``."""

    def stop() -> None:
        service.arrived.wait(10)
        server.stop(grace)

    thread = threading.Thread(target=stop, daemon=True)
    thread.start()
    return thread


class ResettingProxy:
    """A TCP proxy on 127.0.0.1 to ``upstream``; once ``reset_when`` is set, it resets every client connection (RST,
    no FIN first), as a crashing proxy or a middlebox does."""

    def __init__(self, upstream: str, reset_when: threading.Event) -> None:
        host, port = upstream.rsplit(":", 1)
        self._upstream = (host, int(port))
        self._reset_when = reset_when
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.target = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self._upstream)
        except OSError:  # the upstream server is gone (the test ends): reset the client's connection
            _reset(client)
            return
        peers = {client: upstream, upstream: client}
        with contextlib.suppress(OSError):
            while not self._reset_when.is_set():
                readable, _, _ = select.select(list(peers), [], [], 0.02)
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    peers[source].sendall(data)
        _reset(client)
        upstream.close()

    def close(self) -> None:
        """Stop accepting and reset whatever is still open."""
        self._closed = True
        self._listener.close()
        self._reset_when.set()


def _reset(connection: socket.socket) -> None:
    """Close with an RST, not a FIN (SO_LINGER 0)."""
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()


class SilentListener:
    """A port that completes TCP handshakes (the kernel's backlog) and never says a word: no HTTP/2, no call."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.target = f"127.0.0.1:{self._socket.getsockname()[1]}"

    def close(self) -> None:
        """Stop listening."""
        self._socket.close()


# HTTP/2 (RFC 9113): the client's preface, frame types, flags and the REFUSED_STREAM error code.
CLIENT_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0x0, 0x1, 0x3, 0x4, 0x6, 0x7, 0x8
ACK = 0x1
REFUSED_STREAM = 0x7


def _frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes((kind, flags)) + stream_id.to_bytes(4, "big") + payload


class StreamRefuser:
    """A port on 127.0.0.1 whose connections numbered in ``refuse`` (from 1 in the order accepted; all of them when
    None) speak just enough HTTP/2 to refuse every stream: each HEADERS frame is answered RST_STREAM REFUSED_STREAM,
    its header block never read, so nothing of the call was processed. The other connections are relayed to
    ``upstream``, a real service (a Locust run's preflight and audit need one). ``refused`` counts the refused
    streams."""

    def __init__(self, upstream: str = "", refuse: Container[int] | None = None) -> None:
        self._upstream, self._refuse_connections = upstream, refuse
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.target = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self.connections = 0
        self.refused = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                refuse = self._refuse_connections is None or self.connections in self._refuse_connections
            serve_it = self._refuse if refuse else self._relay
            threading.Thread(target=serve_it, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        host, port = self._upstream.rsplit(":", 1)
        with client, socket.create_connection((host, int(port))) as upstream, contextlib.suppress(OSError):
            peers = {client: upstream, upstream: client}
            while True:
                for source in select.select(list(peers), [], [])[0]:
                    data = source.recv(65536)
                    if not data:
                        return
                    peers[source].sendall(data)

    def _refuse(self, client: socket.socket) -> None:
        with client, contextlib.suppress(OSError, EOFError):
            reader = client.makefile("rb")
            if reader.read(len(CLIENT_PREFACE)) != CLIENT_PREFACE:
                return
            client.sendall(_frame(SETTINGS, 0, 0))
            while True:
                header = reader.read(9)
                if len(header) < 9:
                    return
                length, kind, flags = int.from_bytes(header[:3], "big"), header[3], header[4]
                stream_id = int.from_bytes(header[5:9], "big") & 0x7FFFFFFF
                payload = reader.read(length)
                if kind == SETTINGS and not flags & ACK:
                    client.sendall(_frame(SETTINGS, ACK, 0))
                elif kind == PING and not flags & ACK:
                    client.sendall(_frame(PING, ACK, 0, payload))
                elif kind == HEADERS:
                    with self._lock:
                        self.refused += 1
                    client.sendall(_frame(RST_STREAM, 0, stream_id, REFUSED_STREAM.to_bytes(4, "big")))
                elif kind == DATA and length:  # give the connection's window back: the client never stalls
                    client.sendall(_frame(WINDOW_UPDATE, 0, 0, length.to_bytes(4, "big")))
                elif kind == GOAWAY:
                    return

    def close(self) -> None:
        """Stop accepting (connections already open go on until their client closes them)."""
        self._listener.close()
