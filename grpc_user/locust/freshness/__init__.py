"""Freshness: how long after its acknowledgement a log is returned by QueryLog (visibility latency).

A few acknowledged logs per second are sampled and tagged; one QueryLog per poll interval finds the
ones that became visible (``probe``); the figures are HDR histograms (``histogram``), merged across
workers, written to ``<prefix>_freshness.csv`` / ``_freshness_history.csv`` / ``_freshness.json``.
"""
