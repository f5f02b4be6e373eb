"""Run Locust's web UI as a subprocess on a free loopback port and talk to it over HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from locust_runs import LOCUST, ROOT, free_port

START_TIMEOUT_SECONDS = 15.0


def http(url: str, form: dict[str, str] | None = None) -> str:
    """GET (or POST ``form`` urlencoded) and return the body."""
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    with urllib.request.urlopen(url, data=data, timeout=5) as response:
        return response.read().decode()


@dataclass
class WebUI:
    """A running Locust web UI: its address, process, output file and CSV prefix."""

    url: str
    process: subprocess.Popen
    log: Path
    prefix: str

    def get(self, path: str) -> dict:
        """GET ``path`` as JSON."""
        return json.loads(http(f"{self.url}/{path}"))

    def post(self, path: str, form: dict[str, str]) -> dict:
        """POST ``form`` to ``path``, answer as JSON."""
        return json.loads(http(f"{self.url}/{path}", form))

    def wait_for(self, path: str, done, timeout: float = 20.0) -> dict:
        """Poll ``path`` until ``done(answer)``."""
        deadline = time.monotonic() + timeout
        while not done(answer := self.get(path)):
            assert time.monotonic() < deadline, f"{path} never reached the state asked for: {answer}"
            time.sleep(0.2)
        return answer


def wait_for_page(web: WebUI) -> str:
    """The body of the index page once the web UI answers."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if web.process.poll() is not None:
            pytest.fail(f"locust exited with {web.process.returncode}: {web.log.read_text()}")
        try:
            return http(f"{web.url}/")
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"no answer from {web.url} after {START_TIMEOUT_SECONDS:g} s")


def template_args(page: str) -> dict:
    """The ``window.templateArgs`` JSON Locust embeds in its index page."""
    found = re.search(r"window\.templateArgs = (\{.*\})\s*$", page, re.MULTILINE)
    assert found, "no templateArgs in the index page"
    return json.loads(found.group(1))


@contextlib.contextmanager
def web_ui_process(tmp_path: Path, host: str, *args: str, locustfile: str = "locustfiles/mixed.py",
                   env: dict[str, str] | None = None, base_path: str = "",
                   locust: tuple[str, ...] = LOCUST) -> Iterator[WebUI]:  # fmt: skip
    """Locust's web UI against ``host`` with a CSV prefix under tmp_path; killed afterwards. ``locust``: the command
    (``REAL_LOCUST`` for a test that looks at the process by its pid)."""
    port, prefix, log = free_port(), str(tmp_path / "web"), tmp_path / "locust.log"
    command = [*locust, "-f", locustfile, "--web-host", "127.0.0.1", "--web-port", str(port),
               "--csv", prefix, *(["--host", host] if host else []), *(["--web-base-path", base_path] if base_path
               else []), *args]  # fmt: skip
    with open(log, "w") as output:
        # Its own process group: --processes forks workers, which must go with it.
        process = subprocess.Popen(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})}, start_new_session=True)  # fmt: skip
    web = WebUI(f"http://127.0.0.1:{port}{base_path}", process, log, prefix)
    try:
        wait_for_page(web)
        yield web
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
