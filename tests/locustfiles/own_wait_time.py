"""A locustfile with its own wait_time (one call a second per user), as users write them."""

from locust import constant, task

from grpc_user import GrpcUser


class SleepyWriter(GrpcUser):
    wait_time = constant(1)

    @task
    def write(self) -> None:
        self.client.write_log("a user that rests a second between calls")
