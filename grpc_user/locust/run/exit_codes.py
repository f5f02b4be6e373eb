"""The exit codes of a suite run, in one place: Locust's own, and the delivery audit's two.

0 when nothing failed; ``FAILED`` (1, Locust's code for failures: failed requests, a target that does not serve
the log service, a failed action with ``--action-failure stop``, dropped arrivals, a capacity search without an
answer); ``BAD_OPTION`` (2, argparse's: an option or ``--host`` that is refused); ``LOGS_LOST`` (3: acknowledged
logs were lost, unless ``--audit-allow-loss``); ``DELIVERY_UNKNOWN`` (4: the audit could not decide: unsettled at
``--audit-timeout``, incomplete (a worker's final counts never arrived, or another writer shares the run id),
interrupted, or it could not count)."""

FAILED = 1
BAD_OPTION = 2
LOGS_LOST = 3
DELIVERY_UNKNOWN = 4
