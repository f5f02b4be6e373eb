"""Locust's CSV headers, for writing synthetic or hand-made runs in Locust's exact format."""

from __future__ import annotations

from locust.stats import PERCENTILES_TO_REPORT, StatsCSV, get_readable_percentiles

PERCENTILE_COLUMNS = tuple(get_readable_percentiles(PERCENTILES_TO_REPORT))
STATS_HEADER = tuple(StatsCSV(None, PERCENTILES_TO_REPORT).requests_csv_columns)
# Locust builds this one only inside its file writer; same order as StatsCSVFileWriter's.
HISTORY_HEADER = (
    "Timestamp", "User Count", "Type", "Name", "Requests/s", "Failures/s", *PERCENTILE_COLUMNS,
    "Total Request Count", "Total Failure Count", "Total Median Response Time", "Total Average Response Time",
    "Total Min Response Time", "Total Max Response Time", "Total Average Content Size",
)  # fmt: skip
