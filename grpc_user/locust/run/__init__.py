"""The run's foundations, read by every feature: ``SuiteRun`` (one per Locust Environment), the request budget,
the terminal's wait progress."""
