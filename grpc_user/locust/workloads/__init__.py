"""The workloads the locustfiles run, and the seed clients' test data."""
