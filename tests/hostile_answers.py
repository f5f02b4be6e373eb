"""Hostile targets that answer wrongly, for tests: what proxies and misconfigured services do.

``GarbageAnswers``: a real gRPC server on 127.0.0.1 that answers the chosen RPCs with status OK and
bytes that are not a valid response (a truncated field), and the others as the log service would
(every write acknowledged, nothing stored: QueryLog counts 0). ``SilentServer``: accepts TCP
connections and never answers, not even HTTP/2's settings, so every call waits for its deadline.
Both run in the test process (threads, no gevent) and stop with ``stop()`` or a ``with`` block.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable
from concurrent import futures

import grpc

from grpc_user.calls import BATCH_WRITE_LOG, QUERY_LOG, SERVICE, WRITE_LOG
from grpc_user.pb import log_service_pb2 as pb

# Field 3 (a length-delimited string) announcing 5 bytes and carrying 2: no protobuf parser accepts it.
GARBAGE = b"\x1a\x05ab"
EVERY_RPC = (WRITE_LOG, BATCH_WRITE_LOG, QUERY_LOG)


def _valid_answer(rpc: str, request: bytes) -> bytes:
    """What the log service answers when nothing goes wrong (nothing is ever stored)."""
    if rpc == WRITE_LOG:
        return pb.WriteLogResponse(success=True, log_id="queued-1").SerializeToString()
    if rpc == BATCH_WRITE_LOG:
        log_ids = [f"queued-{index}" for index in range(len(pb.BatchWriteLogRequest.FromString(request).log_entries))]
        return pb.BatchWriteLogResponse(success=True, log_ids=log_ids).SerializeToString()
    return pb.QueryLogResponse(success=True, total_count=0).SerializeToString()


class GarbageAnswers:
    """A LogService whose answers to ``garbage`` RPCs cannot be parsed; ``calls`` counts calls per RPC."""

    def __init__(self, garbage: Iterable[str] = EVERY_RPC) -> None:
        self.garbage = frozenset(garbage)
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        handlers = {rpc: grpc.unary_unary_rpc_method_handler(self._answerer(rpc)) for rpc in EVERY_RPC}
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    @property
    def target(self) -> str:
        """``grpc://127.0.0.1:<port>``, as Locust's ``--host``."""
        return f"grpc://127.0.0.1:{self.port}"

    def _answerer(self, rpc: str):
        def answer(request: bytes, context: grpc.ServicerContext) -> bytes:
            with self._lock:
                self.calls[rpc] = self.calls.get(rpc, 0) + 1
            return GARBAGE if rpc in self.garbage else _valid_answer(rpc, request)

        return answer

    def stop(self) -> None:
        """Stop at once."""
        self._server.stop(grace=None)

    def __enter__(self) -> GarbageAnswers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class SilentServer:
    """Accepts TCP connections on 127.0.0.1, reads whatever arrives and never writes a byte."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._connections: list[socket.socket] = []
        self._stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def target(self) -> str:
        """``grpc://127.0.0.1:<port>``, as Locust's ``--host``."""
        return f"grpc://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self._connections.append(connection)
            threading.Thread(target=self._swallow, args=(connection,), daemon=True).start()

    @staticmethod
    def _swallow(connection: socket.socket) -> None:
        try:
            while connection.recv(65536):
                pass
        except OSError:
            pass

    @property
    def connections(self) -> int:
        """How many connections it has accepted so far."""
        return len(self._connections)

    def stop(self) -> None:
        """Close the listener and every connection."""
        self._stopped.set()
        self._listener.close()
        for connection in self._connections:
            connection.close()

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
