"""Latency per RPC and outcome (OK, or the failure's cause), kept apart, in HDR histograms.

Locust's stats put a failed call's response time in the same distribution as the successes, so a
flood of fast RESOURCE_EXHAUSTED answers makes the service look fast; they also round it to two
significant digits. The suite records every call in ``grpc_user.histograms.LatencyHistograms``
(1 µs resolution, 3 significant digits, constant memory); workers send theirs, encoded, with each
stats report and the master adds them exactly.

``grpc_user.run_files`` writes them to ``<prefix>_latency.csv``, ``<prefix>_service_time.csv`` (the open model's
time from sending each call to its answer) and ``<prefix>_histograms.json``.
"""

from __future__ import annotations

REPORT_KEY = "grpc_latency_split"
SERVICE_TIME_REPORT_KEY = "grpc_service_time"
