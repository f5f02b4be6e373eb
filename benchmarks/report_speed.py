"""Report speed: ``python -m reports`` on one hour of full history (three RPCs, a row per name every second).

The CSV files are synthetic but in Locust's exact column format (and the suite's sidecars); the timing
covers loading, pandas figures, matplotlib charts and writing report.md, report.html and the PNGs.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.command_line import run_benchmark
from benchmarks.locust_csv import HISTORY_HEADER, PERCENTILE_COLUMNS, STATS_HEADER
from grpc_user.run_files import write_run_info
from grpc_user.run_files.schema import LOGS, LOGS_HISTORY
from reports.cli import main as report_main

SECONDS = 3600
USERS = 50
TARGET_SECONDS = 3.0
RPCS = (("BatchWriteLog", 120.0, 100), ("QueryLog", 40.0, 0), ("WriteLog", 900.0, 1))


def _history_block(
    stamps: np.ndarray,
    users: np.ndarray,
    kind: str,
    name: str,
    per_second: np.ndarray,
    failures: np.ndarray,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Rows of one name in _stats_history.csv: current rates and percentiles, cumulative totals."""
    median = rng.integers(2, 8, len(stamps)).astype(float)
    block = {
        "Timestamp": stamps,
        "User Count": users,
        "Type": kind,
        "Name": name,
        "Requests/s": per_second,
        "Failures/s": failures,
    }
    for factor, column in zip((1, 1.2, 1.4, 1.5, 2, 3, 4, 5, 7, 9, 10), PERCENTILE_COLUMNS, strict=True):
        block[column] = np.round(median * factor)
    block |= {
        "Total Request Count": np.cumsum(per_second).astype(int),
        "Total Failure Count": np.cumsum(failures).astype(int),
        "Total Median Response Time": median,
        "Total Average Response Time": median * 1.1,
        "Total Min Response Time": 0.4,
        "Total Max Response Time": median * 10,
        "Total Average Content Size": 12.0,
    }
    return pd.DataFrame(block, columns=HISTORY_HEADER)


def write_run(folder: Path, seconds: int = SECONDS) -> int:
    """Locust ``--csv-full-history`` files of a synthetic run of ``seconds``; the number of history rows."""
    rng = np.random.default_rng(7)
    start = 1_800_000_000
    stamps = np.arange(start + 1, start + seconds + 1)
    users = np.minimum(np.arange(1, seconds + 1) * 5, USERS)
    blocks, logs_blocks, totals = [], [], []
    for name, rate, logs_per_call in RPCS:
        per_second = rng.poisson(rate * users / USERS).astype(float)
        failures = rng.binomial(per_second.astype(int), 0.02).astype(float)
        blocks.append(_history_block(stamps, users, "grpc", name, per_second, failures, rng))
        acked = np.cumsum((per_second - failures) * logs_per_call).astype(int)
        logs_blocks.append(
            pd.DataFrame(
                {
                    "Timestamp": stamps,
                    "User Count": users,
                    "Type": "grpc",
                    "Name": name,
                    "Logs Sent": np.cumsum(per_second * logs_per_call).astype(int),
                    "Logs Acked": acked,
                }
            )
        )
        totals.append(
            (
                name,
                int(per_second.sum()),
                int(failures.sum()),
                int(per_second.sum() * logs_per_call),
                int(acked[-1]),
            )
        )
    history = pd.concat(blocks)
    summed = history.groupby("Timestamp", sort=True)[["Requests/s", "Failures/s"]].sum()
    aggregated = _history_block(
        stamps, users, "", "Aggregated", summed["Requests/s"].to_numpy(), summed["Failures/s"].to_numpy(), rng
    )
    first = pd.DataFrame(
        [[start, 0, "", "Aggregated", 0.0, 0.0, *["N/A"] * 11, 0, 0, 0, 0.0, 0, 0, 0]],
        columns=HISTORY_HEADER,
    )
    history = pd.concat([first, pd.concat([history, aggregated]).sort_values("Timestamp", kind="stable")])
    prefix = folder / "locust"
    history.to_csv(f"{prefix}_stats_history.csv", index=False)
    logs_history = pd.concat(logs_blocks)
    logs_sums = logs_history.groupby("Timestamp")[["Logs Sent", "Logs Acked"]].sum().reset_index()
    logs_sums = logs_sums.assign(**{"User Count": users, "Type": "", "Name": "Aggregated"})
    pd.concat([logs_history, logs_sums]).sort_values("Timestamp", kind="stable").to_csv(
        LOGS_HISTORY.path(prefix), index=False, columns=list(LOGS_HISTORY.columns)
    )
    stats_rows, logs_rows, failure_rows = [], [], []
    for name, requests, failed, sent, acked in [
        *totals,
        ("Aggregated", *np.sum([t[1:] for t in totals], axis=0)),
    ]:
        kind = "" if name == "Aggregated" else "grpc"
        stats_rows.append(
            [
                kind,
                name,
                requests,
                failed,
                4,
                4.4,
                0.4,
                80.0,
                12.0,
                requests / seconds,
                failed / seconds,
                4,
                5,
                6,
                6,
                8,
                12,
                16,
                20,
                28,
                36,
                40,
            ]
        )
        logs_rows.append([kind, name, requests, sent, acked, sent - acked, 0])
        if kind:
            failure_rows.append(["grpc", name, "RESOURCE_EXHAUSTED: log queue is full", failed, "", ""])
    pd.DataFrame(stats_rows, columns=STATS_HEADER).to_csv(f"{prefix}_stats.csv", index=False)
    pd.DataFrame(logs_rows, columns=list(LOGS.columns)).to_csv(LOGS.path(prefix), index=False)
    pd.DataFrame(failure_rows, columns=["Method", "Name", "Error", "Occurrences", "First Seen", "Last Seen"]).to_csv(
        f"{prefix}_failures.csv", index=False
    )
    Path(f"{prefix}_exceptions.csv").write_text("Count,Message,Traceback,Nodes\n")
    write_run_info(
        str(prefix),
        {
            "workload": "mixed",
            "users": USERS,
            "spawn_rate": 5,
            "run_time": seconds,
            "duration_seconds": seconds,
            "run_id": "report-speed",
            "target": "grpc://synthetic",
        },
    )
    return len(history)


def main() -> None:
    """Print how long one report of a one-hour full-history run takes, in-process and as a new process."""
    with tempfile.TemporaryDirectory(prefix="report-speed-") as folder:
        rows = write_run(Path(folder))
        out = Path(folder) / "report"
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            code = report_main([folder, "--out", str(out), "--max-p95-ms", "1000"])
        elapsed = time.perf_counter() - started
        if code != 0:
            raise RuntimeError(f"python -m reports exited with {code}")
        written = sorted(p.name for p in out.iterdir())
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "reports", folder, "--out", str(out)], check=True, capture_output=True)
        process = time.perf_counter() - started
    print(
        f"report of 1 h full history, {len(RPCS)} RPCs ({rows:,} history rows): {elapsed:.2f} s "
        f"(target < {TARGET_SECONDS:g} s); as a new process with imports: {process:.2f} s"
    )
    print(f"wrote {', '.join(written)}")


if __name__ == "__main__":
    sys.exit(run_benchmark(main, __doc__))
