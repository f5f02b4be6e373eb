"""The files a run leaves beside Locust's ``--csv`` files: one schema for their writers and their readers.

``schema`` declares every file (its name, its CSV columns or JSON shape); ``csv_files`` and ``json_files`` write
them from the figures the Locust plugin hands over; ``reports`` reads them through the same declarations. Free of
Locust and gevent, so ``reports`` and scripts can import it.

=============================  ===================================================================================
``<prefix>_logs.csv``          requests and logs sent, acked, rejected, in doubt per RPC, and Aggregated
``<prefix>_logs_history.csv``  cumulative logs sent and acked per RPC, every stats interval
``<prefix>_latency.csv``       latency by RPC and outcome from the HDR histograms (ms, µs decimals)
``<prefix>_service_time.csv``  the same from sending each call to its answer (open model)
``<prefix>_histograms.json``   every HDR histogram, encoded
``<prefix>_arrivals.csv``      open-model calls offered, made, dropped (by cause); ``_arrivals_history.csv``
``<prefix>_peers.csv``         calls per server; ``_peers_history.csv``
``<prefix>_freshness.csv``     visibility latency per RPC; ``_freshness_history.csv``, ``_freshness.json``
``<prefix>_actions.csv``       each ``--action``: phase, time, outcome, output
``<prefix>_audit.json``        the delivery audit (and per phase)
``<prefix>_run.json``          the run's parameters, options, audit
``capacity.json``              a capacity search's answer and steps, in the prefix's folder
=============================  ===================================================================================
"""

from grpc_user.run_files.csv_files import (
    ArrivalsHistory,
    CountsHistory,
    FreshnessHistory,
    write_actions,
    write_arrivals,
    write_freshness,
    write_latency,
    write_logs,
    write_peers,
)
from grpc_user.run_files.json_files import (
    read_histograms,
    write_audit,
    write_capacity,
    write_freshness_info,
    write_histograms,
    write_run_info,
)

__all__ = [
    "ArrivalsHistory",
    "CountsHistory",
    "FreshnessHistory",
    "read_histograms",
    "write_actions",
    "write_arrivals",
    "write_audit",
    "write_capacity",
    "write_freshness",
    "write_freshness_info",
    "write_histograms",
    "write_latency",
    "write_logs",
    "write_peers",
    "write_run_info",
]
