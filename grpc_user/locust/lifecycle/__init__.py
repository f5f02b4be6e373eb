"""A run's life: the suite's options and settings, Locust's events, the run id, the request budget,
master/worker messages, and the one way a test ends."""
