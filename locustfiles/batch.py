"""BatchWriteLog workload: each call carries --batch-size generated logs (default 100).

locust -f locustfiles/batch.py --host grpc://127.0.0.1:50051 --batch-size 500
"""

from grpc_user.locust.workloads import BatchWriteUser


class BatchWriteLogUser(BatchWriteUser):
    """One BatchWriteLog per task."""
