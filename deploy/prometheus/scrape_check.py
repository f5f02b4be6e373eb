"""``make prometheus-check``: a real Prometheus scrapes a real run's ``/metrics`` and a figure is queried back.

Everything on 127.0.0.1: the reference server, Locust's web UI (``--autostart``), Prometheus (Debian's
``prometheus`` package) scraping every second. Exit 0 when Prometheus returns the requests the run made.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from reference_server.process import start_server_process

ROOT = Path(__file__).resolve().parent.parent.parent
QUERY = 'sum(grpc_log_loadtest_requests_total{name="WriteLog"})'
WAIT_SECONDS = 30.0


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return answer.read().decode()


def main() -> int:
    """Run it all; the exit code."""
    binary = shutil.which("prometheus")
    if binary is None:
        sys.stderr.write("make prometheus-check: Prometheus is not installed (as root: apt-get install prometheus)\n")
        return 2
    web_port, prometheus_port = _port(), _port()
    with tempfile.TemporaryDirectory() as folder, start_server_process("--flush-period", "0.1") as server:
        config = Path(folder) / "prometheus.yml"
        config.write_text(f"global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: loadtest\n"
                          f"    static_configs: [{{targets: ['127.0.0.1:{web_port}']}}]\n")  # fmt: skip
        locust = subprocess.Popen([sys.executable, "-m", "locust", "-f", "locustfiles/single.py", "--autostart", "-u",
                                   "4", "-r", "4", "-t", "20s", "--autoquit", "5", "--web-host", "127.0.0.1",
                                   "--web-port", str(web_port), "--host", f"grpc://{server.target}"], cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        prometheus = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={folder}/data",
                                       f"--web.listen-address=127.0.0.1:{prometheus_port}"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            deadline, value = time.monotonic() + WAIT_SECONDS, 0.0
            query = f"http://127.0.0.1:{prometheus_port}/api/v1/query?query={urllib.parse.quote(QUERY)}"
            while time.monotonic() < deadline and not value:
                time.sleep(1)
                try:
                    result = json.loads(_get(query))["data"]["result"]
                except OSError:
                    continue
                value = float(result[0]["value"][1]) if result else 0.0
        finally:
            prometheus.terminate()
            locust.terminate()
            prometheus.wait(10)
            locust.wait(30)
    if not value:
        sys.stderr.write(f"make prometheus-check: Prometheus returned nothing for {QUERY} in {WAIT_SECONDS:g} s\n")
        return 1
    sys.stdout.write(f"Prometheus {QUERY} = {value:,.0f} (scraped from the Locust web UI's /metrics)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
