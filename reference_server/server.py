"""Start, stop and restart the reference server: grpc.aio with health, reflection, TLS, graceful drain.

A restart (``request_restart``, SIGHUP in ``python -m reference_server``) stops the service as a
graceful stop does (``--on-stop``), then serves again on the same port; the store, the counters
and the fault schedule outlive it, as a database outlives a deploy of the service in front of it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from grpc_user.pb import log_service_pb2 as pb
from grpc_user.pb import log_service_pb2_grpc as pb_grpc
from reference_server.faults import Faults
from reference_server.ingest import Flusher, LogQueue
from reference_server.listen import check_listenable, listen_address
from reference_server.service import LogService
from reference_server.settings import ServerSettings, SettingsError
from reference_server.stats import ServerStats, write_stats_file
from reference_server.storage import LogStore

logger = logging.getLogger(__name__)
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["LogService"].full_name
GRACE_SECONDS = 3.0
START_TIMEOUT_SECONDS = 15.0


def _credentials(settings: ServerSettings) -> grpc.ServerCredentials | None:
    if not settings.tls_cert:
        return None
    client_ca = Path(settings.tls_client_ca).read_bytes() if settings.tls_client_ca else None
    return grpc.ssl_server_credentials(
        [(Path(settings.tls_key).read_bytes(), Path(settings.tls_cert).read_bytes())],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


class ReferenceServer:
    """The reference log service on its own asyncio loop in a background thread (a context manager)."""

    def __init__(self, settings: ServerSettings | None = None) -> None:
        self.settings = settings or ServerSettings(port=0)
        self.port = 0
        self._stats = ServerStats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._restart = False
        self._ready = threading.Event()
        self.failure: BaseException | None = None
        self._thread: threading.Thread | None = None

    @property
    def target(self) -> str:
        """``host:port`` clients connect to (``unix:PATH`` for a unix socket)."""
        host = self.settings.host
        return host if host.startswith("unix:") else listen_address(host, self.port)

    def stats(self) -> ServerStats:
        """A snapshot of the server's counters."""
        return self._stats.snapshot()

    def start(self) -> ReferenceServer:
        """Serve in a background thread; return once serving (or raise why not)."""
        self._thread = threading.Thread(target=lambda: asyncio.run(self.serve()), name="reference-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_SECONDS):
            raise SettingsError(f"reference server on {self.settings.host}:{self.settings.port} "
                              f"not serving after {START_TIMEOUT_SECONDS:g} s")  # fmt: skip
        if self.failure is not None:
            raise self.failure
        return self

    def stop(self) -> ServerStats:
        """Stop accepting, store (or drop, ``--on-stop drop-queue``) the queued logs, close the store; return the
        final counters."""
        if self._thread is not None and self._thread.is_alive() and self._loop is not None and self._stopping:
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join()
        return self.stats()

    def restart(self) -> None:
        """Stop as ``stop`` does and serve again on the same port (from another thread); return once it serves."""
        if self._loop is None or self._stopping is None:
            raise RuntimeError("the reference server is not running")
        restarts = self._stats.restarts
        self._loop.call_soon_threadsafe(self.request_restart)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while self._stats.restarts == restarts and self.failure is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if self.failure is not None:
            raise self.failure

    async def serve(self) -> None:
        """Serve until ``request_stop``, restarting at each ``request_restart``; then drain gracefully."""
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        try:
            store = LogStore(self.settings.db)
            queue = LogQueue(self.settings.queue_size)
            flusher = Flusher(self.settings, queue, store, Faults(self.settings), self._stats)
            server, flushing = await self._start(flusher, store)
        except BaseException as error:  # reported to the starting thread
            self.failure = error
            self._ready.set()
            return
        self._ready.set()
        while True:
            await self._stopping.wait()
            restart, self._restart = self._restart, False
            self._stopping.clear()
            drop = self.settings.on_stop == "drop-queue"
            logger.info("%s: refusing new calls, %s %d queued logs", "restarting" if restart else "stopping",
                        "storing the batch being built and dropping the rest of" if drop else "flushing",
                        flusher.pending)  # fmt: skip
            await server.stop(GRACE_SECONDS)
            await flusher.stop(flushing, drop_queue=drop)
            if not restart:
                break
            try:
                server, flushing = await self._start(flusher, store)
            except BaseException as error:
                logger.error("restart failed: %s", error)
                self.failure = error
                break
            self._stats.restarts += 1
            flusher.write_stats()
        await flusher.close()
        self._log_faults()

    def request_stop(self) -> None:
        """Ask a server running on the current loop to stop (signal handlers)."""
        if self._stopping is not None:
            self._stopping.set()

    def request_restart(self) -> None:
        """Ask a server running on the current loop to stop and serve again on the same port (SIGHUP)."""
        if self._stopping is not None and not self._stopping.is_set():
            self._restart = True
            self._stopping.set()

    async def _start(self, flusher: Flusher, store: LogStore) -> tuple[grpc.aio.Server, asyncio.Task]:
        settings = self.settings
        if settings.stats_file:
            try:
                write_stats_file(settings.stats_file, self._stats)
            except OSError as error:
                why = error.strerror or error
                raise SettingsError(f"--stats-file {settings.stats_file!r} cannot be written: {why}") from None
        options: list[tuple[str, int]] = [("grpc.max_receive_message_length", settings.max_message_bytes),
                                          ("grpc.so_reuseport", 0)]  # fmt: skip
        if settings.max_concurrent_streams:
            # HTTP/2's own limit, counted as the client counts it. grpc's server would also count each call until its
            # handler has released it (its "overload protection"), after the client has read the answer, and so
            # refuse (REFUSED_STREAM) some streams a client sends within the limit: 36 of 3,670 calls in 10 s of 200
            # Locust users over 50 connections to a limit of 4.
            options += [("grpc.max_concurrent_streams", settings.max_concurrent_streams),
                        ("grpc.http.overload_protection", 0)]  # fmt: skip
        server = grpc.aio.server(options=options)
        service = LogService(settings, flusher.queue, flusher, flusher.faults, self._stats)
        pb_grpc.add_LogServiceServicer_to_server(service, server)
        health = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        reflection.enable_server_reflection([SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                                             reflection.SERVICE_NAME], server)  # fmt: skip
        unix = settings.host.startswith("unix:")  # a unix socket: grpc's unix:path, no port
        if not unix:
            check_listenable(settings.host, self.port or settings.port)
        address = settings.host if unix else listen_address(settings.host, self.port or settings.port)
        credentials = _credentials(settings)
        try:
            port = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
        except RuntimeError as error:
            raise SettingsError(f"cannot listen on {address}: {error}") from None
        if not port:
            raise SettingsError(f"cannot listen on {address}: the port is in use or not available")
        self.port = port
        await server.start()
        for name in ("", SERVICE_NAME):
            await health.set(name, health_pb2.HealthCheckResponse.SERVING)
        flushing = asyncio.create_task(flusher.run())
        logger.info("reference log service on %s%s (queue %d, flush %d every %gs, on stop: %s, stored so far %d)",
                    self.target, " with TLS" if credentials else "", settings.queue_size, settings.flush_batch,
                    settings.flush_period, settings.on_stop, await flusher.in_storage_thread(store.count))  # fmt: skip
        return server, flushing

    def _log_faults(self) -> None:
        stats = self._stats
        logger.info("stopped: acked %d, stored %d, dropped %d (drop-rate), lost %d (failed flushes), dropped %d "
                    "(queue dropped at a stop), refused %d (queue full), restarts %d, injected errors %d, "
                    "delayed calls %d", stats.acked, stats.stored, stats.dropped, stats.flush_failed,
                    stats.dropped_on_stop, stats.rejected_queue_full, stats.restarts, stats.injected_errors,
                    stats.injected_latency_calls)  # fmt: skip

    def __enter__(self) -> ReferenceServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
