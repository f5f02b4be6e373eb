"""``locustfiles/single.py`` with the latency recorded as before the HDR histograms (``benchmarks.before_hdr``)."""

from benchmarks import before_hdr  # noqa: F401  (puts the old recorder in place at init)
from grpc_user.locust.workloads import SingleWriteUser


class WriteLogUser(SingleWriteUser):
    """One WriteLog per task."""
