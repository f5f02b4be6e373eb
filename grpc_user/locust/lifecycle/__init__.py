"""A test's life in Locust's events: what happens at init, at each start and stop, on the workers, at the end."""
