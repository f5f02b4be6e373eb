"""A locustfile whose task spends half a second in its own code after each call: its users are not busy with calls,
yet not ready for the next scheduled start either."""

import gevent
from locust import task

from grpc_user import GrpcUser


class Dawdler(GrpcUser):
    @task
    def write(self) -> None:
        self.client.write_log("then some slow work of the user's own")
        gevent.sleep(0.5)
