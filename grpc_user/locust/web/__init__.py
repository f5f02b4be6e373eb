"""The suite's additions to Locust's web UI: tabs, the audit strip, the /swarm guard."""
