"""For tests only: the bridge's asyncio loop dies after the first call; later calls must fail at once, clearly."""

from locust import task

from grpc_user import GrpcUser
from grpc_user.locust.transport.bridge import hub_loop


class LoopDiesUser(GrpcUser):
    """Writes; the first write takes the loop down with it."""

    loop_killed = False

    @task
    def write(self) -> None:
        self.client.write_log("one log, then the loop dies")
        if not LoopDiesUser.loop_killed:
            LoopDiesUser.loop_killed = True
            hub_loop().stop(RuntimeError("the loop failed"))
