"""``make deploy-check``: does a deploy under load lose logs? The whole story in one command.

Twice, the single workload runs 30 s against the embedded reference server (``reference_server.around``)
with ``--action "10s:python -m reference_server.restart"``, a deploy 10 s in: once with the server's
``--on-stop drop-queue`` (it stores the batch being built and drops its queue, as the real service
does), once with ``--on-stop flush``. The server's store is slower than the load (``--store-rate``),
as a busy database is, so a backlog is queued when the deploy comes. Each run gets its report; the
per-phase verdicts are printed. Exit 0 when the drop-queue deploy lost acknowledged logs and the
flush deploy lost none; 1 otherwise, naming what differed. Logs sent before the restart began but
still queued when it came are lost too: they count in phase 0, the phase they were sent in.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
RUN_SECONDS, RESTART_AT = 30, 10
USERS, TARGET_RPS = 20, 300
# Storage at half the load, as a busy database: the queue holds a backlog (up to 150 logs more every second, on a
# machine that makes the 300 calls/s) when the deploy comes; the run's end waits for the rest to be stored.
SERVER_ARGS = ("--queue-size", "100000", "--flush-batch", "100", "--flush-period", "1", "--store-rate", "150")


def run_once(on_stop: str, folder: Path) -> dict:
    """One run with a restart at 10 s and its report; the run's ``_audit.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    prefix = folder / "locust"
    restart = f"{shlex.quote(sys.executable)} -m reference_server.restart"
    command = [sys.executable, "-m", "reference_server.around", *SERVER_ARGS, "--on-stop", on_stop, "--",
               sys.executable, "-m", "locust", "-f", "locustfiles/single.py", "--headless", "-u", str(USERS), "-r",
               str(USERS), "-t", f"{RUN_SECONDS}s", "--target-rps", str(TARGET_RPS), "--csv", str(prefix),
               "--csv-full-history", "--audit-timeout", "120", "--action", f"{RESTART_AT}s:{restart}"]  # fmt: skip
    print(f"\n=== --on-stop {on_stop}: {RUN_SECONDS} s of the single workload, a restart at {RESTART_AT} s -> {folder}",
          flush=True)  # fmt: skip
    with open(folder / "locust.log", "w") as log:
        done = subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    print(f"locust exited with {done.returncode} (its output: {folder / 'locust.log'})")
    subprocess.run([sys.executable, "-m", "reports", str(folder)], cwd=ROOT, check=False)
    audit_path = Path(f"{prefix}_audit.json")
    if not audit_path.is_file():
        return {}
    audit = json.loads(audit_path.read_text())
    most = "?" if audit["lost_max"] is None else f"{audit['lost_max']:,}"
    print(f"delivery audit {audit['status']}: {audit['lost_min']:,}..{most} of {audit['acked']:,} "
          "acknowledged logs lost")  # fmt: skip
    for phase in audit.get("phases", []):
        print(f"  phase {phase['phase']}: {phase['sentence']}")
    return audit


def main() -> int:
    """Both deploys, both reports, the verdict."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    runs = ROOT / "reports" / "runs"
    dropped = run_once("drop-queue", runs / f"{stamp}-deploy-check-drop-queue")
    flushed = run_once("flush", runs / f"{stamp}-deploy-check-flush")
    problems = []
    lost = {phase["phase"]: phase["lost_min"] for phase in dropped.get("phases", [])}
    if not sum(lost.values()):
        problems.append("the drop-queue deploy lost no acknowledged log")
    if not flushed.get("phases") or any(phase["lost_min"] for phase in flushed["phases"]):
        problems.append("the flush deploy lost acknowledged logs (or was not audited)")
    print()
    if problems:
        print("deploy-check: unexpected: " + "; ".join(problems))
        return 1
    print(f"deploy-check: the restart that drops its queue lost {sum(lost.values()):,} acknowledged logs "
          f"({lost.get(1, 0):,} sent after it began, {lost.get(0, 0):,} sent before it and still queued when it came); "
          "the same restart with a flushing stop lost none")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
