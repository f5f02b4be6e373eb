"""What the suite counts beside Locust's stats (logs per RPC, latency by outcome) and the files it writes."""
