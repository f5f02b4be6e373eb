"""``GrpcUser``: an abstract Locust User whose ``self.client`` speaks the log service.

Shaped like Locust's HttpUser / FastHttpUser: ``host`` is the target (``host:port``,
``grpc://host:port`` or ``grpcs://host:port``; default from GRPC_SERVER_HOST / GRPC_SERVER_PORT),
``self.client`` offers ``write_log`` / ``batch_write_logs`` / ``query_logs`` and fires one request
event per RPC, and ``self.data`` generates seed-style test data for this user.
"""

from __future__ import annotations

import logging
from typing import Any

from locust import User
from locust.exception import LocustError
from locust.runners import WorkerRunner
from locust.user.wait_time import constant_throughput

from grpc_user.locust.run.state import suite_run
from grpc_user.locust.run.user_total import total_users
from grpc_user.locust.user.session import GrpcLogClient
from grpc_user.settings import default_max_batch_size, default_target
from grpc_user.target import parse_target
from grpc_user.testdata import LogDataGenerator

USERS_PER_WORKER_INDEX = 1_000_000
logger = logging.getLogger(__name__)


class GrpcUser(User):
    """Abstract User for the gRPC log service; subclass it and write tasks with ``self.client``."""

    abstract = True
    # True when the tasks send batches of ``--batch-size`` (``self.settings.batch_size``): ``--batch-sizes`` is
    # refused for a workload whose users send none.
    uses_batch_size = False

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        run = self._run = suite_run(environment)
        try:
            target = parse_target(self.host or default_target())
        except ValueError as error:
            raise LocustError(f"--host: {error}") from None
        runner = environment.runner
        worker_index = runner.worker_index if isinstance(runner, WorkerRunner) else 0
        user_number = next(run.user_numbers)
        user_index = worker_index * USERS_PER_WORKER_INDEX + user_number
        settings = self.settings
        self.client = GrpcLogClient(
            transport=run.transports.shared(
                target,
                settings.security,
                lb_policy=settings.grpc_lb,
                connections=settings.grpc_connections,
                user_number=user_number,
            ),
            target=str(target),
            request_event=environment.events.request,
            context=self.context,
            timeout=settings.grpc_timeout,
            max_batch_size=default_max_batch_size(),
            budget=run.budget,
            run_id=settings.run_id,
            arrivals=run.arrivals,
            phases=run.phases if settings.actions.actions else None,
            sampler=run.sampler,
        )
        self.data = LogDataGenerator(
            run_id=self.settings.run_id,
            service_name=self.settings.service_name,
            message_bytes=self.settings.message_bytes,
            seed=self.settings.seed,
            user_index=user_index,
        )
        self._keep_the_rate_options()

    def _keep_the_rate_options(self) -> None:
        """A locustfile's own ``wait_time`` would silently defeat ``--target-rps`` and ``--arrival-rate`` (a user
        sleeping is not ready for its start): with either, the suite's ``wait_time`` replaces it, said in one line."""
        settings = self.settings
        option = ("--arrival-rate" if settings.arrival_rate is not None else "--capacity-search"
                  if settings.capacity is not None else "--target-rps" if settings.target_rps else "")  # fmt: skip
        if not option or type(self).wait_time is GrpcUser.wait_time:
            return
        self.wait_time = self._suite_wait_time  # type: ignore[method-assign]
        name = type(self).__name__
        if name not in self._run.overridden_wait_times:
            self._run.overridden_wait_times.add(name)
            logger.warning("%s.wait_time is ignored: %s sets the rate (%s), so the suite's pacing replaces the "
                           "locustfile's own", name, option, "each call waits for its scheduled start"
                           if option != "--target-rps" else "each user paces itself to its share")  # fmt: skip

    @property
    def settings(self) -> Any:
        """The test's validated options (the capacity search may change the batch size between its searches)."""
        return self._run.settings

    def wait_time(self) -> float:
        """Closed loop by default; ``--target-rps`` paces each user to its share; with ``--arrival-rate`` each call
        waits for its scheduled start instead (``self.client`` does)."""
        return self._suite_wait_time()

    def _suite_wait_time(self) -> float:
        rate = self.settings.target_rps
        if not rate:
            return 0.0
        return constant_throughput(rate / total_users(self.environment))(self)
