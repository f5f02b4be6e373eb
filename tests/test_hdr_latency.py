"""Latency in HDR histograms: to the microsecond, merged exactly across workers, never outside [min, max], the same
figure in every output (``_latency.csv``, the report, its gates, ``--json``); the counts follow Locust's resets."""

from __future__ import annotations

import asyncio
import csv
import json
import random
import statistics
import threading
import time

import grpc
import msgpack
import pytest
from conftest import grpc_host
from locust_runs import PACED, distributed_args, run_locust
from test_reports import in_process

from grpc_user import calls
from grpc_user.histograms import HIGHEST_US, Latencies, LatencyHistograms, new_histogram
from grpc_user.run_files import read_histograms

pytestmark = pytest.mark.slow


def latency_rows(prefix: str, suffix: str = "latency") -> dict[tuple[str, str], dict[str, float]]:
    with open(f"{prefix}_{suffix}.csv", newline="") as handle:
        return {(row["Name"], row["Outcome"]): {key: float(value) for key, value in row.items()
                                                if key not in ("Name", "Outcome")}
                for row in csv.DictReader(handle)}  # fmt: skip


def test_two_workers_histograms_add_up_exactly_to_one_that_saw_every_call():
    rng = random.Random(7)
    first = [rng.randint(200, 2_000) for _ in range(3_000)] + [1_058_500]
    second = [rng.randint(900, 250_000) for _ in range(2_000)] + [150]
    workers, alone = [LatencyHistograms(), LatencyHistograms()], LatencyHistograms()
    for worker, values in zip(workers, (first, second), strict=True):
        for value in values:
            worker.record("WriteLog", "OK", value)
            alone.record("WriteLog", "OK", value)
    master = LatencyHistograms()
    for worker in workers:  # as Locust carries a report: msgpack
        master.merge(msgpack.unpackb(msgpack.packb(worker.drain()), use_list=True))
    merged, expected = master.by_key[("WriteLog", "OK")], alone.by_key[("WriteLog", "OK")]
    assert merged.count == expected.count == 5_002
    assert merged.recorded() == expected.recorded(), "every bucket adds up exactly"
    assert (merged.low(), merged.high()) == (150, 1_058_500), "min and max stay exact, not bucket edges"
    shares = (0.0, 50.0, 90.0, 99.0, 99.9, 100.0)
    assert merged.values_at(shares) == expected.values_at(shares)
    ordered = sorted(first + second)
    for share, value in merged.values_at(shares).items():
        exact = ordered[max(int(share / 100 * len(ordered) + 0.5), 1) - 1]
        assert abs(value - exact) <= exact / 1000 + 1, (share, value, exact)  # 3 significant digits
    assert workers[0].drain() == [], "a worker's drain starts it again from empty"


def test_at_1055_ms_no_percentile_lies_above_the_slowest_call_and_the_p95_gates_pass(serve, tmp_path):
    server = serve("--latency-ms", "1055")
    run = run_locust("single", grpc_host(server), tmp_path, users=2, run_time="3s")
    assert run.returncode == 0, run.stderr[-2000:]
    for key, row in latency_rows(run.prefix).items():
        assert 1055 <= row["Min (ms)"] <= row["50%"] <= row["95%"] <= row["99%"] <= row["Max (ms)"], (key, row)
    slowest = latency_rows(run.prefix)[("Aggregated", "OK")]["Max (ms)"]
    # A gate at the slowest call's latency passes: no figure lies above what some call took.
    gated = in_process(tmp_path, "--max-p95-ms", slowest, "--max-p95-ok-ms", slowest, "--max-p99-ms", slowest, "--json",
                       "--no-charts")  # fmt: skip
    assert gated.returncode == 0, gated.stderr
    summary = json.loads(gated.stdout)
    assert summary["latency_source"] == "hdr"
    assert summary["latency_ms"]["p95"] <= summary["latency_ms"]["max"] == slowest
    locust_p95 = float(run.stats()["Aggregated"]["95%"])
    assert locust_p95 >= 1100 and locust_p95 % 100 == 0, "Locust's own column stays as Locust writes it (2 digits)"


class BareCalls(threading.Thread):
    """Sequential WriteLogs on a bare grpc.aio channel in this process (no Locust), while the test runs: the same
    machine load as the Locust run it is compared with. ``times_ms`` holds each call's latency."""

    def __init__(self, target: str) -> None:
        super().__init__(daemon=True)
        self.target, self.times_ms, self.done = target, [], threading.Event()

    def run(self) -> None:
        asyncio.run(self._calls())

    async def _calls(self) -> None:
        request = calls.write_request("bare", service_name="bare-measurement").SerializeToString()
        async with grpc.aio.insecure_channel(self.target) as channel:
            write = channel.unary_unary(calls.METHOD_PATHS[calls.WRITE_LOG])
            while not self.done.is_set():
                started = time.perf_counter()
                await write(request, timeout=5)
                self.times_ms.append((time.perf_counter() - started) * 1000)


def test_a_sub_millisecond_p50_reads_to_the_microsecond_and_matches_a_bare_measurement(serve, tmp_path):
    server = serve()
    bare = BareCalls(server.target)
    bare.start()
    try:
        run = run_locust("single", grpc_host(server), tmp_path, "--max-requests", "1000", users=1, run_time="30s")
    finally:
        bare.done.set()
        bare.join(10)
    assert run.returncode == 0, run.stderr[-2000:]
    row = latency_rows(run.prefix)[("WriteLog", "OK")]
    suite = row["50%"]
    measured = statistics.median(bare.times_ms)
    # To the microsecond, not whole milliseconds: one figure may land on a whole millisecond (a p50 of 2.000 ms
    # was seen once), not the four together.
    figures = [row[key] for key in ("Min (ms)", "50%", "95%", "Max (ms)")]
    assert any(figure != round(figure) for figure in figures), f"{figures} ms: whole milliseconds, not microseconds"
    # Two processes on a busy 2-core machine see different scheduling delays (2.028 vs 1.250 ms with both cores
    # saturated; 5.503 vs 2.465 in a CI run beside real Locust runs): a factor 4 still tells a unit slip (x1000) or a
    # figure of another call from this one, and no whole-millisecond figure passes the check above.
    assert measured / 4 - 0.2 <= suite <= 4 * measured + 0.2, f"suite p50 {suite:.3f} ms, bare grpc.aio {measured:.3f}"
    hdr = read_histograms(f"{run.prefix}_histograms.json")["latency"].combined(name="WriteLog", outcome="OK")
    assert hdr.count == 1000 and hdr.value_at(50.0) / 1000 == suite, "the CSV's p50 is the saved histogram's"


def test_reset_stats_resets_the_suites_counts_with_locusts(serve, tmp_path):
    server = serve()
    run = run_locust("single", grpc_host(server), tmp_path, "--reset-stats", *PACED, users=4, spawn_rate=2,
                     run_time="4s")  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    requests = run.requests("WriteLog")
    assert run.logs()["WriteLog"]["Requests"] == requests
    assert latency_rows(run.prefix)[("WriteLog", "OK")]["Count"] == requests
    audit = run.json("audit")
    assert audit["acked"] > requests, "the audit keeps the whole test's totals"


def test_run_json_records_the_workers_that_ran_the_test(serve, tmp_path):
    server = serve()
    run = run_locust("single", grpc_host(server), tmp_path, *distributed_args(2), *PACED, users=4, run_time="3s")
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.json("run")["workers"] == 2
    latency = read_histograms(f"{run.prefix}_histograms.json")["latency"]
    assert latency.combined(name="WriteLog").count == run.requests("WriteLog"), "every worker's calls are merged"


def test_the_hot_path_counts_every_value_in_the_bucket_hdrhistograms_own_record_value_would():
    rng = random.Random(3)
    values = [0, 1, 2_047, 2_048, 2_049, 1_058_500, HIGHEST_US, HIGHEST_US + 1, *(rng.randint(0, 3_000) for _ in
              range(5_000)), *(rng.randint(0, 10**10) for _ in range(5_000))]  # fmt: skip
    fast, reference = Latencies(), new_histogram()
    for value in values:
        fast.record(value)
        reference.record_value(min(value, HIGHEST_US))
    assert list(fast.histogram.counts) == list(reference.counts)
    assert (fast.count, fast.low(), fast.high()) == (reference.total_count, reference.min_value, reference.max_value)
    decoded = Latencies.decode(*fast.encode())
    assert decoded.recorded() == fast.recorded() and decoded.count == fast.count
