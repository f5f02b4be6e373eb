"""``locustfiles/batch.py`` with the latency recorded as before the HDR histograms (``benchmarks.before_hdr``)."""

from benchmarks import before_hdr  # noqa: F401  (puts the old recorder in place at init)
from grpc_user.locust.workloads import BatchWriteUser


class BatchWriteLogUser(BatchWriteUser):
    """One BatchWriteLog of --batch-size logs per task."""
