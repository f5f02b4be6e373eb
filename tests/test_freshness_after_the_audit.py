"""The freshness words for the samples still pending when the looking ends agree with the run's own evidence: the
delivery audit's verdict and reason, and whether any sample was ever found (issue 25, D3).

A service that acknowledges and stores nothing (the reference server's ``--drop-rate 1``) got an audit that said "the
service stored nothing, not even the log the audit wrote after the stop", and freshness words (the console line, the
report, its ``--max-visibility-p95-ms`` gate) that said the opposite: "160 unknown (not looked for long enough: the
service was still storing when the audit gave up)". Without the audit the line said to raise
``--freshness-query-share`` "to follow them", with 0 of 160 samples ever visible. In-process: a real
``FreshnessProbe``, the real audit (against a real reference server, or its scripted seam), ``finish_probe``, the
run files and ``python -m reports`` read back.
"""

from __future__ import annotations

import json
import threading
import time
from types import SimpleNamespace

import grpc
from test_audit_barrier import write
from test_audit_polling import audit
from test_freshness_verdicts import Samples, report, write_run

from grpc_user.locust.audit.delivery import audit_delivery
from grpc_user.locust.freshness.files import summary_line
from grpc_user.locust.freshness.lifecycle import finish_probe, pending_because, settle_without_audit
from grpc_user.run_files.freshness_words import sampled
from reference_server.process import start_server_process


def a_run(**settings: float) -> SimpleNamespace:
    """What ``finish_probe`` and ``settle_without_audit`` read of a run: no actions, the audit's settle options."""
    return SimpleNamespace(
        settings=SimpleNamespace(actions=SimpleNamespace(actions=[]), freshness_sample_rate=20.0, **settings),
        audit_interrupted_by="", audit_interrupt=threading.Event(), started_at=0.0, stopped_at=0.0,
        workers_without_final_counts=[],
    )  # fmt: skip


def test_an_audit_that_saw_the_service_store_nothing_leaves_the_samples_never_visible_and_every_output_says_why(
    tmp_path, capsys
):
    """The audit against a reference server that stores nothing: unsettled, nothing stored while it waited, not even
    its barrier. The samples still pending are never visible, for that reason, in the console line, _freshness.json,
    the report, ``--json`` and the gate; none is "unknown", and nothing says the service was still storing."""
    server = start_server_process("--queue-size", "100000", "--drop-rate", "1")
    try:
        acked = write(server, "nothing", 100)
        with grpc.insecure_channel(server.target) as channel:
            result = audit_delivery(lambda path, payload: channel.unary_unary(path)(payload, timeout=5),
                                    run_id="nothing", acked=acked, timeout=3, settle=1)  # fmt: skip
    finally:
        server.kill()
    assert (result.status, result.service_stored) == ("unsettled", 0) and result.barriers >= 1, result.summary()
    assert "the service stored nothing, not even the log the audit wrote after the stop" in result.detail
    fed = Samples()
    fed.acked(20)
    fed.probe.close()  # the looking is over: finish_probe makes no last sweep
    data = finish_probe(None, a_run(), fed.probe, "", result)
    because = f"the service stored nothing in the {result.settle_seconds:,.1f} s the audit waited, not even the log"
    assert (data["never_visible"], data["unknown"], data["unknown_because"]) == (20, 0, ""), data
    assert data["never_visible_because"].startswith(because), data["never_visible_because"]
    line = summary_line(data)
    assert f"; 20 never visible by the end of the audit: {because}" in line, line
    assert "unknown" not in line and "still storing" not in line, line
    folder = write_run(tmp_path / "r", data)
    code, _, err = report(capsys, folder, "--no-charts", "--max-visibility-p95-ms", "3000")
    assert code == 1 and "visibility unknown" not in err, err
    assert f"visibility latency p95 later than any figure: 20 of 20 samples never visible ({because}" in err, err
    assert f"never became visible by the end of the audit ({because}" in (folder / "report.md").read_text()
    code, out, _ = report(capsys, folder, "--no-charts", "--json")
    assert json.loads(out)["freshness"]["never_visible_because"] == data["never_visible_because"]


def test_an_audit_that_gave_up_while_the_service_was_storing_leaves_them_unknown_in_the_audits_own_words(monkeypatch):
    """Still storing other logs (a backlog ahead of the barrier): unknown, not looked for long enough, and the words
    are the audit's own reason, never a fixed one."""
    result = audit([90], monkeypatch, timeout=4, barrier_after=None, others=list(range(0, 4000, 100)))
    assert result.status == "unsettled" and result.service_stored > 0, result
    assert pending_because(result) == (f"the audit gave up unsettled: {result.detail}", "")
    assert "still storing" in result.detail


def test_an_audit_whose_barrier_the_service_refused_leaves_them_unknown_for_that_reason(monkeypatch):
    result = audit([90], monkeypatch, timeout=4, others=[0, 50, 100], barrier_refused=grpc.StatusCode.PERMISSION_DENIED)
    unknown, never = pending_because(result)
    assert result.status == "unsettled" and not never, result
    assert "refused the audit's barrier" in unknown and "still storing" not in unknown, unknown


def test_an_audit_cut_short_or_that_could_not_count_leaves_them_unknown_and_a_settled_one_never_visible(monkeypatch):
    settled = audit([10, 90, 90], monkeypatch)
    assert settled.status == "lost" and pending_because(settled) == ("", "")
    assert pending_because(settled, interrupted_by="SIGINT") == ("the audit was cut short by SIGINT", "")


def test_without_the_audit_a_spent_share_is_not_said_to_be_raised_when_no_sample_was_ever_visible():
    """--no-audit against a service that stores nothing: the share spent at the stop, 0 samples ever visible. The
    line said to raise the share "to follow them": nothing the probe saw says a larger share would find them (the
    service may store nothing), so the words say what it saw and what tells which, the audit."""
    fed = Samples()
    fed.acked(160)
    fed.probe.share_spent = lambda: True
    because = settle_without_audit(a_run(audit_timeout=20.0, audit_settle=6.0), fed.probe)
    assert "raise" not in because, because
    assert because.endswith(
        "and no sample had become visible before it: the service may store nothing, or store "
        "them only later (a backlog ahead of them, a long flush period); the audit (off: "
        "--no-audit) tells which, where a larger share would only look longer"
    ), because
    fed.probe.finish(because)
    assert f"160 unknown (not looked for long enough: {because})" in summary_line(fed.figures())


def test_without_the_audit_a_spent_share_is_still_said_to_be_raised_when_samples_were_being_found():
    fed = Samples()
    fed.found([400.0, 900.0])
    fed.acked(30)
    fed.probe.share_spent = lambda: True
    because = settle_without_audit(a_run(audit_timeout=20.0, audit_settle=6.0), fed.probe)
    assert because == ("--freshness-query-share 1.5% of the calls was spent, so nothing looked for them after the "
                       "stop; raise it to follow them")  # fmt: skip


def test_without_the_audit_its_timeout_does_not_claim_other_samples_became_visible_when_none_did():
    """--no-audit with --audit-settle longer than --audit-timeout (not refused without the audit): the wait ends at
    the timeout, and said "while others became visible" though none did."""
    fed = Samples()
    fed.found([400.0])  # found during the test, not during the wait
    fed.acked(5)
    started = time.monotonic()
    because = settle_without_audit(a_run(audit_timeout=0.3, audit_settle=30.0), fed.probe)
    assert because == "still not visible after --audit-timeout 0.3 s", because
    assert time.monotonic() - started < 10  # the timeout, not the settle time (a generous margin for a busy machine)


def test_sampling_stopped_for_the_reserve_with_no_sample_visible_claims_no_backlog_it_did_not_see():
    """The reserve kept for samples pending ever longer, none ever visible: not "visibility grew with the store's
    backlog", a visibility nothing measured."""
    data = {"samples": 40, "visible": 0, "asked": 200, "taken": 40, "sampling_reserved_at_s": 4.7,
            "query_share_percent": 1.5}  # fmt: skip
    words = sampled(data)
    assert "(no sample had become visible: the oldest pending ever longer); raise the share to sample longer" in words
    assert "backlog" not in words and "grew" not in words, words
    assert "(visibility grew with the store's backlog); raise the share to sample longer" in sampled(
        {**data, "visible": 12}
    )
