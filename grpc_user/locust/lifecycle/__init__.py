"""A run's life: Locust's events, the run id, the request budget,
master/worker messages, and the one way a test ends."""
