"""The test's users in total: each worker's share of a rate (``--arrival-rate``, ``--target-rps``, the freshness
probe's samples) is its users over them. The master puts the total in the options that Locust sends with every
spawn message, so a worker reads the master's count."""

from __future__ import annotations

from typing import Any

from locust.runners import MasterRunner, WorkerRunner

TOTAL_USERS_OPTION = "grpc_total_users"


def total_users(environment: Any) -> int:
    """How many users the whole test runs: the master's count on a worker, the runner's own elsewhere (at least 1)."""
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        total = getattr(environment.parsed_options, TOTAL_USERS_OPTION, 0)
        return int(total or runner.target_user_count or 1)
    return int(runner.target_user_count or 1) if runner is not None else 1


def send_user_total_with_every_spawn(environment: Any, runner: MasterRunner) -> None:
    """On the master: every spawn message carries the test's users in total, so a change of users (the web UI, a
    shape) keeps each worker's share."""
    start = runner.start

    def start_with_total(user_count: int, spawn_rate: float, *args: Any, **kwargs: Any) -> None:
        if environment.parsed_options is not None:
            setattr(environment.parsed_options, TOTAL_USERS_OPTION, user_count)
        start(user_count, spawn_rate, *args, **kwargs)

    runner.start = start_with_total  # type: ignore[method-assign]  # wraps Locust's own start
