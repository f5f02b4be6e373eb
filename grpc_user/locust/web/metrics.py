"""``/metrics`` on Locust's web UI (the master's): the suite's figures in Prometheus's text format.

A collector reads the run's state at each scrape (nothing is counted per call for it): Locust's stats
for requests and failures per RPC and cause, the suite's log counts and latency histograms, users, the
arrival rate, and the last delivery audit. Counters only go up within a test and start again from
zero at a new test or a reset of the stats, which Prometheus's ``rate()`` and ``increase()`` treat as a
counter reset. Gauges of a test (users, arrival rates) are 0 while no test runs.

``grpc_log_loadtest_latency_seconds`` is read from the suite's HDR histograms (values to the µs, 3
significant digits), with buckets from 100 µs: a sub-millisecond service is resolved, not rounded.
Names and units follow Prometheus's conventions (base units, ``_total`` counters), checked with
``promtool check metrics`` in the tests.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from grpc_user.locust.run.state import suite_run

PREFIX = "grpc_log_loadtest"
# Microseconds: what a log service's latency spans, from a healthy call on a LAN to a deadline.
BUCKETS_US = (100, 250, 500, 750, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
              2_500_000, 5_000_000, 10_000_000, 30_000_000)  # fmt: skip
# Microseconds: how long a log takes to become visible, from a fast flush to a service far behind.
VISIBILITY_BUCKETS_US = (10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
                         10_000_000, 30_000_000, 60_000_000)  # fmt: skip
# Locust's runner states (locust.runners.STATE_RUNNING, STATE_SPAWNING), written out: the web UI's modules are
# imported by tests that must not load Locust (and its monkey-patching) into the test process.
TEST_RUNNING = ("running", "spawning")


class SuiteCollector:
    """The suite's figures, collected from the run's state when Prometheus scrapes."""

    def __init__(self, environment: Any) -> None:
        self._environment = environment

    def collect(self) -> Iterator[Any]:
        """Every metric family, read now."""
        environment, run = self._environment, suite_run(self._environment)
        stats = environment.runner.stats
        requests = CounterMetricFamily(f"{PREFIX}_requests", "calls per RPC name (Locust's request events)",
                                       labels=["name"])  # fmt: skip
        for (name, _method), entry in sorted(stats.entries.items()):
            requests.add_metric([name], entry.num_requests)
        yield requests
        failures = CounterMetricFamily(f"{PREFIX}_failures", "failed calls per RPC name and cause",
                                       labels=["name", "cause"])  # fmt: skip
        by_cause: dict[tuple[str, str], int] = {}
        for error in stats.errors.values():
            key = (error.name, str(error.error).split(":", 1)[0])
            by_cause[key] = by_cause.get(key, 0) + error.occurrences
        for (name, cause), count in sorted(by_cause.items()):
            failures.add_metric([name, cause], count)
        yield failures
        yield from self._logs(run)
        yield self._peers(run)
        yield self._latency(run)
        yield GaugeMetricFamily(f"{PREFIX}_users", "users running (the most calls in flight with --arrival-rate)",
                                value=environment.runner.user_count)  # fmt: skip
        yield from self._arrivals(run, stats)
        yield from self._audit(run)
        yield from self._freshness(run)

    @staticmethod
    def _logs(run: Any) -> Iterator[Any]:
        for field, help_text in (("sent", "logs sent"), ("acked", "logs acknowledged"),
                                 ("rejected", "logs sent and surely not acknowledged"),
                                 ("in_doubt", "logs of calls whose outcome is unknown")):  # fmt: skip
            family = CounterMetricFamily(f"{PREFIX}_logs_{field}", f"{help_text} per RPC name", labels=["name"])
            for name, logs in sorted(run.counter.by_name.items()):
                family.add_metric([name], getattr(logs, field))
            yield family

    @staticmethod
    def _peers(run: Any) -> CounterMetricFamily:
        run.peers.poll()  # within a test only; a master's own channels make no load calls, its workers report theirs
        family = CounterMetricFamily(f"{PREFIX}_peer_requests", "calls per server that answered them (grpc's "
                                     "per-subchannel counts, read every few seconds)", labels=["peer"])  # fmt: skip
        for peer, calls in sorted(run.peers.by_peer.items()):
            family.add_metric([peer], calls)
        return family

    @staticmethod
    def _latency(run: Any) -> HistogramMetricFamily:
        family = HistogramMetricFamily(f"{PREFIX}_latency_seconds", "call latency per RPC name and outcome, from the "
                                       "suite's HDR histograms (from the scheduled start with --arrival-rate)",
                                       labels=["name", "outcome"])  # fmt: skip
        for (name, outcome), latencies in sorted(run.latency.by_key.items()):
            counts = latencies.count_at_or_below(BUCKETS_US)
            buckets = [(f"{bound / 1e6:g}", count) for bound, count in zip(BUCKETS_US, counts, strict=True)]
            buckets.append(("+Inf", latencies.count))
            total_seconds = latencies.mean() * latencies.count / 1e6
            family.add_metric([name, outcome], buckets, sum_value=total_seconds)
        return family

    def _arrivals(self, run: Any, stats: Any) -> Iterator[Any]:
        schedule = run.live_rate or run.settings.arrival_rate
        running = run.started_at and self._environment.runner.state in TEST_RUNNING
        offered = schedule.rate(time.time() - run.started_at) if schedule is not None and running else 0.0
        yield GaugeMetricFamily(f"{PREFIX}_arrival_rate_offered_per_second", "calls per second the open model offers "
                                "now (0 while no test runs)", value=offered)  # fmt: skip
        yield GaugeMetricFamily(
            f"{PREFIX}_arrival_rate_achieved_per_second",
            "calls per second started now, Locust's current rate (0 while no test runs)",
            value=stats.total.current_rps if running else 0,
        )

    @staticmethod
    def _audit(run: Any) -> Iterator[Any]:
        audit = run.audit
        if audit is None:
            return
        status = GaugeMetricFamily(f"{PREFIX}_audit_status", "the last delivery audit's status (1 for the one it has)",
                                   labels=["run_id", "status"])  # fmt: skip
        status.add_metric([audit.get("run_id", ""), audit.get("status", "")], 1)
        yield status
        for key in ("acked", "persisted", "in_doubt", "lost_min", "lost_max", "unexpected"):
            family = GaugeMetricFamily(f"{PREFIX}_audit_{key}", f"the last delivery audit's {key.replace('_', ' ')}",
                                       labels=["run_id"])  # fmt: skip
            value = audit.get(key, audit.get("lost", 0))
            family.add_metric([audit.get("run_id", "")], math.nan if value is None else value)  # None: unknown
            yield family

    @staticmethod
    def _freshness(run: Any) -> Iterator[Any]:
        probe = run.freshness
        if probe is None:
            return
        latency = HistogramMetricFamily(f"{PREFIX}_visibility_latency_seconds", "freshness: from a sampled log's "
                                        "acknowledgement to the first QueryLog that returns it, per RPC name, from "
                                        "the probe's HDR histograms", labels=["name"])  # fmt: skip
        # A summary: Prometheus reserves the quantile label for one (promtool refuses it on a gauge)
        quantiles = Metric(f"{PREFIX}_visibility_latency_quantile_seconds", "visibility latency at a quantile (1: the "
                           "largest) per RPC name, from the HDR histograms", "summary")  # fmt: skip
        for name in probe.histograms.names():
            latencies = probe.histograms.combined(name=name)
            if not latencies.count:
                continue  # no sample, no value (0 s would read as the freshest service)
            counts = latencies.count_at_or_below(VISIBILITY_BUCKETS_US)
            buckets = [(f"{bound / 1e6:g}", count) for bound, count in zip(VISIBILITY_BUCKETS_US, counts, strict=True)]
            latency.add_metric([name], [*buckets, ("+Inf", latencies.count)],
                               sum_value=latencies.mean() * latencies.count / 1e6)  # fmt: skip
            values = latencies.values_at((50.0, 95.0, 99.0, 100.0))
            for percentile, micros in values.items():
                quantiles.add_sample(quantiles.name, {"name": name, "quantile": f"{percentile / 100:g}"}, micros / 1e6)
            quantiles.add_sample(f"{quantiles.name}_sum", {"name": name}, latencies.mean() * latencies.count / 1e6)
            quantiles.add_sample(f"{quantiles.name}_count", {"name": name}, latencies.count)
        yield latency
        yield quantiles
        for key, help_text, value in (
            ("samples", "sampled logs counted for visibility latency (visible, pending, never visible or unknown; "
             "not those held back)", sum(probe.samples.values())),
            ("pending", "counted sampled logs acknowledged and not visible yet", probe.counted_pending()),
            ("held_back", "sampled logs taken and never counted (to learn the store's pace, or a coarser window's)",
             probe.held_back),
            ("never_visible", "sampled logs not visible by the end of the audit", len(probe.never_visible)),
            ("unknown", "sampled logs still pending when the looking was cut short", len(probe.unknown)),
            ("coarse", "1 when the visibility figures are a coarse window's (the store-learning's flush cycle, late by "
             f"up to {PREFIX}_freshness_error_bound_seconds), counted because the test stopped before the query share "
             "paid for a sampling window at the poll interval", int(probe.held_released)),
        ):  # fmt: skip
            yield GaugeMetricFamily(f"{PREFIX}_freshness_{key}", help_text, value=value)
        if not math.isinf(probe.precise_window_at):
            yield GaugeMetricFamily(f"{PREFIX}_freshness_precise_window_at_seconds", "when (seconds into the test) the "
                                    "query share is expected to pay for a sampling window at the poll interval, at the "
                                    "call rate of now (no value before the store's pace is learnt)",
                                    value=probe.precise_window_at)  # fmt: skip
        yield CounterMetricFamily(f"{PREFIX}_freshness_probe_queries", "the freshness probe's QueryLog calls (not in "
                                  "the request counts)", value=probe.queries)  # fmt: skip
        yield GaugeMetricFamily(f"{PREFIX}_freshness_poll_interval_seconds", "the shortest time asked for between "
                                "two of the freshness probe's queries (--freshness-poll-interval), not the error "
                                f"bound: the polls may be further apart, see {PREFIX}_freshness_error_bound_seconds",
                                value=probe.poll_interval)  # fmt: skip
        bound = GaugeMetricFamily(f"{PREFIX}_freshness_error_bound_seconds", "how late a visibility figure may be, "
                                  "measured: the largest gap so far between the polls that saw a sample (no value "
                                  "before a sample is visible)")  # fmt: skip
        if probe.histograms.combined().count:
            bound.add_metric([], probe.max_poll_gap)
        yield bound


def install_metrics(environment: Any, web_ui: Any) -> None:
    """``/metrics`` under ``--web-base-path``, behind the web UI's login when it has one."""
    registry = CollectorRegistry()
    registry.register(SuiteCollector(environment))
    routes = Blueprint("grpc_user_metrics", __name__, url_prefix=getattr(environment.parsed_options, "web_base_path",
                                                                         None))  # fmt: skip

    @routes.route("/metrics")
    @web_ui.auth_required_if_enabled
    def metrics() -> Response:
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)

    web_ui.app.register_blueprint(routes)
