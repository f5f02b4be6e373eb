"""Mixed workload: writes, batches and log-viewer queries weighted by --mix (write=70,batch=20,query=10).

locust -f locustfiles/mixed.py --host grpc://127.0.0.1:50051 --mix write=50,batch=30,query=20
"""

from grpc_user.locust.workloads import MixedUser


class MixedLogUser(MixedUser):
    """Writes, batches and queries."""
