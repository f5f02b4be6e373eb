"""For tests only: a task that raises on every call (after one good write), as a locustfile with a bug does."""

from locust import task

from grpc_user import GrpcUser


class TaskRaisesUser(GrpcUser):
    """Writes one log, then fails each task the same way."""

    @task
    def write_then_fail(self) -> None:
        self.client.write_log("one log")
        raise ValueError(f"no such adv_id {id(self) % 1000}")
