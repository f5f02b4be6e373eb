"""What one worker learnt of the store (its pace and flush cycle), relayed by the master to every worker, so that a
distributed test learns once and the other workers save their query share for their sampling windows.

The first worker (Locust's worker index 0) learns as a single process does and sends what it learnt
(``LEARNT_MESSAGE``: the run id, the pace, the cycle in s) to the master, each time it learns again (a store that
kept up at first and no longer does). The master keeps it in its options (``LEARNT_OPTION``), so that a worker that
joins later gets it with its spawn message as the test's end travels (``run.known_end``), and sends it to every
worker now. A worker reads it from its options; one that was told nothing ``TOLD_WITHIN_SECONDS`` after learning
would have started (the first worker lost, or too slow to learn) learns itself and tells the others the same way.
"""

from __future__ import annotations

import logging
from typing import Any

from locust.runners import WorkerRunner

from grpc_user.locust.freshness.windows import SharedLearning

logger = logging.getLogger(__name__)

LEARNT_MESSAGE = "grpc_freshness_learnt"
LEARNT_OPTION = "grpc_freshness_learnt"
# The worker that learns for the test (Locust's worker index).
LEARNING_WORKER_INDEX = 0


def _keep(environment: Any, learnt: dict[str, Any]) -> None:
    if environment.parsed_options is not None:
        setattr(environment.parsed_options, LEARNT_OPTION, learnt)


def register_master(environment: Any) -> None:
    """The master keeps what a worker learnt (for the spawn messages of workers to come) and tells every worker."""
    runner = environment.runner

    def learnt(environment: Any, msg: Any, **_: Any) -> None:
        _keep(environment, dict(msg.data))
        runner.send_message(LEARNT_MESSAGE, dict(msg.data))

    runner.register_message(LEARNT_MESSAGE, learnt)


def register_worker(environment: Any) -> None:
    """A worker keeps what the master relays."""
    environment.runner.register_message(LEARNT_MESSAGE, lambda environment, msg, **_: _keep(environment, msg.data))


def told(environment: Any, run_id: str) -> tuple[str, float] | None:
    """What a worker learnt for the test ``run_id`` (its pace, its cycle in s), as the master relayed it; None
    before it did."""
    learnt = getattr(environment.parsed_options, LEARNT_OPTION, None)
    if not isinstance(learnt, dict) or learnt.get("run_id") != run_id or not isinstance(learnt.get("pace"), str):
        return None
    return learnt["pace"], float(learnt.get("cycle") or 0.0)


def shared_learning(environment: Any, run_id: str) -> SharedLearning | None:
    """How a worker's sampling windows share their learning (None in a single process and on the master: they
    learn alone, or not at all)."""
    runner = environment.runner
    if not isinstance(runner, WorkerRunner):
        return None

    def tell(pace: str, cycle: float) -> None:
        logger.debug("freshness: worker %d learnt the store's pace %s, cycle %.3f s", runner.worker_index, pace, cycle)
        runner.send_message(LEARNT_MESSAGE, {"run_id": run_id, "pace": pace, "cycle": cycle})

    return SharedLearning(
        learns=runner.worker_index == LEARNING_WORKER_INDEX, told=lambda: told(environment, run_id), tell=tell
    )
