"""The suite's workloads; ``locustfiles/*.py`` only import the one they run."""

from __future__ import annotations

import datetime as dt

from locust import task

from grpc_user.entries import timestamp_value
from grpc_user.locust.user.users import GrpcUser

VIEWER_WINDOW = dt.timedelta(minutes=5)


class SingleWriteUser(GrpcUser):
    """WriteLog, one generated log per call."""

    abstract = True

    @task
    def write_log(self) -> None:
        self.client.send_write(self.data.write_request())


class BatchWriteUser(GrpcUser):
    """BatchWriteLog, ``--batch-size`` generated logs per call."""

    abstract = True
    uses_batch_size = True

    @task
    def batch_write_logs(self) -> None:
        self.client.send_batch(self.data.batch_request(self.settings.batch_size))


class MixedUser(GrpcUser):
    """Writes, batches and the queries a log viewer makes, weighted by ``--mix``."""

    abstract = True
    uses_batch_size = True

    @task
    def mixed(self) -> None:
        kind = self.data.choice(self.settings.mix)
        if kind == "write":
            self.client.send_write(self.data.write_request())
        elif kind == "batch":
            self.client.send_batch(self.data.batch_request(self.settings.batch_size))
        else:
            self.query_like_a_viewer()

    def query_like_a_viewer(self) -> None:
        """One of: a trace this user wrote, this run's logs by metadata, recent errors of the service."""
        shape = self.data.choice((("trace", 1), ("metadata", 1), ("time-range", 1)))
        trace_id = self.data.recent_trace_id()
        if shape == "trace" and trace_id:
            self.client.query_logs(trace_id=trace_id, limit=10, name="QueryLog:trace")
        elif shape == "time-range":
            now = dt.datetime.now(dt.UTC)
            self.client.query_logs(
                service_name=self.settings.service_name,
                level="ERROR",
                start_time=timestamp_value(now - VIEWER_WINDOW),
                end_time=timestamp_value(now),
                limit=50,
                name="QueryLog:time-range",
            )
        else:
            self.client.query_logs(
                run_id=self.settings.run_id, monitor_type="click", limit=20, name="QueryLog:metadata"
            )
