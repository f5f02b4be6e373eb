"""WriteLog workload: each user sends one generated log per call (closed loop, or --target-rps).

locust -f locustfiles/single.py --host grpc://127.0.0.1:50051
"""

from grpc_user.locust.workloads import SingleWriteUser


class WriteLogUser(SingleWriteUser):
    """One WriteLog per task."""
