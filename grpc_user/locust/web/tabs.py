"""The suite's additions to Locust's web UI: two tabs, a live audit strip, and a guard on ``/swarm``.

* "Logs per RPC": logs sent, acknowledged, in doubt and rejected per RPC, and logs/s.
* "Delivery audit": the verdict in a sentence, then the figures, of the current or last test.
* The audit strip: Locust's page stops polling its stats when a test stops, which is when the
  audit starts; a small script polls ``grpc-audit`` instead, shows the audit's progress and
  verdict at the bottom of every tab, and reloads the page once the audit finishes if the
  Delivery audit tab is open, so that tab shows the result by itself.
* "Actions" (with ``--action``): each action's time, command, outcome and its phase's audit.
* Security settings and actions are fixed at start-up: a ``/swarm`` request that tries to change
  them, or to point credentials at another host, is refused with a message the page shows; so is a
  form whose test the command line would refuse, or whose target fails the preflight
  (``grpc_user.locust.web.start``), before any user spawns.

Uses Locust's documented extension points (``extended_tabs`` / ``extended_tables`` template
arguments and ``extended_stats`` in the ``/stats/requests`` answer), as in Locust's
``examples/extend_web_ui.py``; routes are registered under ``--web-base-path``.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from string import Template
from typing import Any

from flask import Blueprint, jsonify, request

from grpc_user.histograms import AGGREGATED
from grpc_user.locust.actions.runner import running_actions
from grpc_user.locust.audit.delivery import AuditResult
from grpc_user.locust.freshness.files import figures, strip_sentence
from grpc_user.locust.run.state import suite_run
from grpc_user.locust.settings.suite import ACTION_OPTIONS, SECURITY_OPTIONS
from grpc_user.locust.web.metrics import install_metrics
from grpc_user.locust.web.start import note_run_time, start_problem

logger = logging.getLogger(__name__)

TAB_KEY = "grpc-logs"
AUDIT_TAB_KEY = "grpc-audit"
AUDIT_ROUTE = "grpc-audit"
ACTIONS_TAB_KEY = "grpc-actions"
ACTION_COLUMNS = (
    ("phase", "Phase"),
    ("at", "At (s)"),
    ("command", "Command"),
    ("status", "Outcome"),
    ("exit_code", "Exit code"),
    ("output", "First line of output"),
    ("audit", "Delivery audit of its phase"),
)
AUDIT_FIGURES = ("status", "run_id", "acked", "in_doubt", "persisted", "lost", "unexpected", "settle_seconds",
                 "detail")  # fmt: skip
RATE_WINDOW_SECONDS = 10.0
COLUMNS = (
    ("name", "Name"),
    ("requests", "# Requests"),
    ("logs_sent", "Logs sent"),
    ("logs_acked", "Logs acknowledged"),
    ("logs_in_doubt", "Logs in doubt"),
    ("logs_rejected", "Logs rejected"),
    ("acked_per_second", "Current logs/s acknowledged"),
)
AUDIT_STRIP_SCRIPT = Template("""<script>
(function () {
  var strip = document.createElement("div");
  strip.id = "grpc-audit-strip";
  strip.style.cssText = "position:fixed;left:0;right:0;bottom:0;z-index:2000;padding:6px 16px;" +
    "font:14px sans-serif;color:#fff;display:none";
  var freshness = document.createElement("div");
  freshness.id = "grpc-freshness";
  freshness.style.cssText = "position:fixed;right:0;bottom:0;z-index:2001;padding:6px 16px;" +
    "font:14px sans-serif;color:#fff;background:#37474f;display:none";
  var colours = {ok: "#2e7d32", in_doubt: "#ed6c02", running: "#0277bd", skipped: "#616161", unsettled: "#ed6c02",
                 incomplete: "#ed6c02"};
  var previous = "";
  function poll() {
    fetch("./$route", {credentials: "include"}).then(function (answer) { return answer.json(); })
      .then(function (audit) {
        if (!document.body.contains(strip)) { document.body.appendChild(strip); }
        strip.style.display = audit.sentence ? "block" : "none";
        strip.textContent = audit.sentence;
        strip.style.background = colours[audit.status] || "#c62828";
        var onAuditTab = new URLSearchParams(window.location.search).get("tab") === "$tab";
        if (previous === "running" && audit.status !== "running" && onAuditTab) { window.location.reload(); }
        previous = audit.status;
        if (!document.body.contains(freshness)) { document.body.appendChild(freshness); }
        freshness.style.display = audit.freshness ? "block" : "none";
        freshness.textContent = audit.freshness || "";
      }).catch(function () {}).finally(function () { setTimeout(poll, 1000); });
  }
  poll();
})();
</script>""").substitute(route=AUDIT_ROUTE, tab=AUDIT_TAB_KEY)


class LogsRate:
    """Current logs/s per name from cumulative counts sampled by the UI's polling."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, dict[str, int]]] = deque()

    def sample(self, acked: dict[str, int]) -> dict[str, float]:
        """Record the counts now and return the rate over the last few seconds."""
        now = time.monotonic()
        self._samples.append((now, acked))
        while len(self._samples) > 2 and now - self._samples[0][0] > RATE_WINDOW_SECONDS:
            self._samples.popleft()
        then, before = self._samples[0]
        elapsed = now - then
        if elapsed <= 0:
            return {name: 0.0 for name in acked}
        return {name: max(0.0, (count - before.get(name, 0)) / elapsed) for name, count in acked.items()}


def logs_rows(environment: Any, rate: LogsRate) -> list[dict[str, Any]]:
    """The rows of the Logs per RPC tab, one per request name and an Aggregated row."""
    counter = suite_run(environment).counter
    named = sorted(counter.by_name.items()) + [(AGGREGATED, counter.total())]
    rates = rate.sample({name: logs.acked for name, logs in named})
    return [
        {
            "name": name,
            "safe_name": name,
            "requests": logs.requests,
            "logs_sent": logs.sent,
            "logs_acked": logs.acked,
            "logs_in_doubt": logs.in_doubt,
            "logs_rejected": logs.rejected,
            "acked_per_second": round(rates.get(name, 0.0), 1),
        }
        for name, logs in named
    ]


def audit_state(environment: Any) -> dict[str, Any]:
    """The audit of the current or last test, its verdict in a sentence first ('' before any test), and the
    freshness figure shown beside it (``freshness``: '' without a probe)."""
    run = suite_run(environment)
    freshness = freshness_sentence(run)
    if run.audit is not None:
        return {"sentence": AuditResult(**run.audit).sentence(), **run.audit, "freshness": freshness}
    if not run.started_at:
        return {"sentence": "", "status": "", "run_id": "", "freshness": ""}
    sentence = f"Delivery audit of run {run.settings.run_id}: runs when the test stops"
    return {"sentence": sentence, "status": "pending", "run_id": run.settings.run_id, "freshness": freshness}


def freshness_sentence(run: Any) -> str:
    """Visibility latency so far (or final), in a sentence, or when a first figure is expected; '' with
    ``--no-freshness`` or before any test."""
    if run.freshness is None or not run.started_at:
        return ""
    data = run.freshness_figures or figures(run.freshness, run.settings.freshness_sample_rate,
                                            with_histograms=False)  # fmt: skip
    return strip_sentence(data)


def audit_rows(environment: Any) -> list[dict[str, Any]]:
    """The rows of the Delivery audit tab: the verdict, then one row per figure."""
    state = audit_state(environment)
    rows = [("verdict", state["sentence"] or "no test yet")]
    if "acked" in state:
        most = state.get("lost_max", state["lost"])
        state = {**state, "lost": f"{state.get('lost_min', state['lost'])}..{'?' if most is None else most}"}
        rows += [(key, state.get(key, "")) for key in AUDIT_FIGURES]
    else:
        rows.append(("run_id", state["run_id"]))
    # Keyed "figure", not "name": Locust sorts a table by its "name" column, and the verdict comes first.
    return [{"figure": figure, "value": value} for figure, value in rows]


def action_rows(environment: Any) -> list[dict[str, Any]]:
    """The rows of the Actions tab: one per action of the current or last test (its plan before any test)."""
    run = suite_run(environment)
    audits = {phase["phase"]: phase["sentence"] for phase in run.phase_audits}
    outcomes = running_actions(environment).outcomes
    if outcomes:
        return [{"phase": o.phase, "at": o.at, "command": o.command, "status": o.words(),
                 "exit_code": "" if o.exit_code is None else o.exit_code, "output": (o.output or [""])[0],
                 "audit": audits.get(o.phase, "")} for o in outcomes]  # fmt: skip
    return [{"phase": a.phase, "at": a.at, "command": a.command, "status": "runs when a test starts", "exit_code": "",
             "output": "", "audit": ""} for a in run.settings.actions.actions]  # fmt: skip


def refusal(environment: Any, form: Any) -> str:
    """Why a ``/swarm`` form may not be applied ('' when it may): it touches the settings fixed at start-up."""
    changed = [f"--{key.replace('_', '-')}" for key in SECURITY_OPTIONS if key in form]
    if changed:
        return (f"{', '.join(changed)} cannot be changed from the web UI: security settings are fixed when Locust "
                "starts (restart it with the new value)")  # fmt: skip
    actions = [f"--{key.replace('_', '-')}" for key in ACTION_OPTIONS if key in form]
    if actions:
        return (f"{', '.join(actions)} cannot be set from the web UI: actions run shell commands and are fixed when "
                "Locust starts (restart it with --action)")  # fmt: skip
    run = suite_run(environment)
    security = run.startup_security
    has_credentials = security is not None and bool(security.token or security.metadata or security.key)
    new_host = str(form.get("host", run.startup_host)).strip()
    if has_credentials and new_host != run.startup_host:
        return (
            f"--host cannot be changed to {new_host!r} from the web UI: a bearer token, --grpc-metadata or a "
            "client certificate is configured and would be sent there (restart Locust with the new --host)"
        )
    return ""


def register(events: Any) -> None:
    """Wire the web UI's additions into Locust's events: installed at init when Locust runs its web UI (after the
    options were checked: a refused option quits first)."""

    def on_init(environment: Any, web_ui: Any = None, **_: Any) -> None:
        if web_ui is not None:
            install_web_ui(environment, web_ui)

    events.init.add_listener(on_init)


def install_web_ui(environment: Any, web_ui: Any) -> None:
    """Add the tabs, their rows in every ``/stats/requests`` answer, the audit strip and the ``/swarm`` guard."""
    rate = LogsRate()
    web_ui.template_args["extended_tabs"] = [
        {"title": "Logs per RPC", "key": TAB_KEY},
        {"title": "Delivery audit", "key": AUDIT_TAB_KEY},
    ]
    web_ui.template_args["extended_tables"] = [
        {"key": TAB_KEY, "structure": [{"key": key, "title": title} for key, title in COLUMNS]},
        {"key": AUDIT_TAB_KEY, "structure": [{"key": "figure", "title": "Figure"}, {"key": "value", "title": "Value"}]},
    ]
    if suite_run(environment).settings.actions.actions:
        web_ui.template_args["extended_tabs"].append({"title": "Actions", "key": ACTIONS_TAB_KEY})
        web_ui.template_args["extended_tables"].append(
            {"key": ACTIONS_TAB_KEY, "structure": [{"key": key, "title": title} for key, title in ACTION_COLUMNS]}
        )
    routes = Blueprint("grpc_user", __name__, url_prefix=getattr(environment.parsed_options, "web_base_path", None))

    @routes.route(f"/{AUDIT_ROUTE}")
    @web_ui.auth_required_if_enabled
    def audit() -> Any:
        return jsonify(audit_state(environment))

    web_ui.app.register_blueprint(routes)
    install_metrics(environment, web_ui)

    @web_ui.app.before_request
    def guard_swarm() -> Any:
        if request.endpoint != "locust.swarm" or request.method != "POST":
            return None
        reason = refusal(environment, request.form) or start_problem(environment, web_ui, request.form)
        if not reason:
            note_run_time(environment, web_ui, request.form)
            return None
        logger.error("web UI: %s", reason)
        return jsonify({"success": False, "message": reason, "host": environment.host})

    @web_ui.app.after_request
    def extend(response: Any) -> Any:
        if request.endpoint == "locust.request_stats" and response.is_json:
            extended = [
                {"key": TAB_KEY, "data": logs_rows(environment, rate)},
                {"key": AUDIT_TAB_KEY, "data": audit_rows(environment)},
            ]
            if suite_run(environment).settings.actions.actions:
                extended.append({"key": ACTIONS_TAB_KEY, "data": action_rows(environment)})
            response.set_data(json.dumps({**response.get_json(), "extended_stats": extended}))
        elif request.endpoint == "locust.index" and response.mimetype == "text/html":
            page = response.get_data(as_text=True)
            response.set_data(page.replace("</body>", f"{AUDIT_STRIP_SCRIPT}</body>", 1))
        return response
