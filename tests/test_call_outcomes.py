"""Each call ends as exactly one of acknowledged, rejected or in doubt, decided from whether its request can have
left the client (the channel's connectivity) or reached the service at all (an HTTP/2 REFUSED_STREAM, as the client's
own HTTP/2 layer reports it), never from the words of the service's detail.

Against ``tests/hostile_transport.py``: a real gRPC server on loopback that stores each write the moment it
arrives, so a call its transport then cut provably reached it, and must be in doubt, never rejected.
"""

from __future__ import annotations

import asyncio
import threading

import grpc
import pytest
from hostile_transport import (
    HostileLogService,
    ResettingProxy,
    SilentListener,
    StreamRefuser,
    goaway_during_a_call,
    running,
    serve,
)
from locust_runs import free_port, run_locust

from grpc_user import AsyncLogClient, LogClient
from reference_server.process import start_server_process


def assert_in_doubt(result, status: str, service: HostileLogService) -> None:
    assert service.received == 1, "the call never reached the service: nothing to be in doubt about"
    assert (result.success, result.status, result.in_doubt) == (False, status, True), result


def test_a_call_cut_by_the_server_s_max_connection_age_is_in_doubt():
    service = HostileLogService(answer_after=2.0)
    with running(service, max_connection_age_ms=300, grace_ms=100) as target, LogClient(target) as client:
        result = client.write_log("cut by the connection's age")
    assert_in_doubt(result, "UNAVAILABLE", service)


def test_a_call_cut_by_a_goaway_is_in_doubt():
    service = HostileLogService(answer_after=2.0)
    server, port = serve(service)
    stopping = goaway_during_a_call(server, service)
    with LogClient(f"127.0.0.1:{port}") as client:
        result = client.write_log("cut by a GOAWAY")
    stopping.join(5)
    assert_in_doubt(result, result.status, service)
    assert result.status in ("UNAVAILABLE", "CANCELLED"), result


def test_a_connection_reset_mid_call_is_in_doubt():
    service = HostileLogService(answer_after=2.0)
    with running(service) as target:
        proxy = ResettingProxy(target, reset_when=service.arrived)
        with LogClient(proxy.target) as client:
            result = client.write_log("cut by a reset")
        proxy.close()
    assert_in_doubt(result, "UNAVAILABLE", service)


@pytest.mark.parametrize("lb_policy", ["", "round_robin"])
def test_a_reset_mid_call_is_in_doubt_while_the_connectivity_watch_lags_behind(lb_policy):
    """gRPC delivers a blocking channel's connectivity changes from one thread, to each subscriber in turn, merging
    what it could not deliver in time. Here a later subscriber holds that thread once CONNECTING is delivered, so
    the client's watch has seen the channel connecting, not the READY on which the request left nor the IDLE after
    the reset: the call must still be in doubt (it was counted rejected: seen in CI on Python 3.13). With
    round_robin the channel reconnects at once after the reset, and the proxy resets that connection too: the channel
    is CONNECTING again, or in TRANSIENT_FAILURE, when the call fails, as if it had never connected."""
    service = HostileLogService(answer_after=2.0)
    delivered = threading.Event()

    def hold_the_delivery_thread(state: grpc.ChannelConnectivity) -> None:
        if state is grpc.ChannelConnectivity.CONNECTING:
            delivered.wait(5)

    with running(service) as target:
        proxy = ResettingProxy(target, reset_when=service.arrived)
        with LogClient(proxy.target, lb_policy=lb_policy) as client:
            client._channel.subscribe(hold_the_delivery_thread)
            result = client.write_log("cut by a reset while the watch lags")
            delivered.set()
            client._channel.unsubscribe(hold_the_delivery_thread)
        proxy.close()
    assert_in_doubt(result, "UNAVAILABLE", service)


def cut_calls_of_several_threads(rounds: int = 3) -> tuple[int, set[str]]:
    """``rounds`` times: a LogClient shared by 8 threads of 6 writes each, through a proxy that resets every
    connection once the service has a write, with the client's watch held behind (as above). Returns the calls
    made and those counted rejected that the service received."""
    made, received_yet_rejected = 0, set()
    for round_number in range(rounds):
        service = HostileLogService(answer_after=2.0)
        delivered, results = threading.Event(), {}

        def hold_the_delivery_thread(state: grpc.ChannelConnectivity, delivered=delivered) -> None:
            if state is grpc.ChannelConnectivity.CONNECTING:
                delivered.wait(10)

        with running(service) as target:
            proxy = ResettingProxy(target, reset_when=service.arrived)
            with LogClient(proxy.target, timeout=3) as client:
                client._channel.subscribe(hold_the_delivery_thread)

                def write(thread: int, client=client, results=results, round_number=round_number) -> None:
                    for number in range(6):
                        call = f"r{round_number}-t{thread}-{number}"
                        results[call] = client.write_log("one of several threads' calls", run_id=call)

                threads = [threading.Thread(target=write, args=(thread,)) for thread in range(8)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(30)
                delivered.set()
                client._channel.unsubscribe(hold_the_delivery_thread)
            proxy.close()
        made += len(results)
        rejected = {call for call, result in results.items() if not result.success and not result.in_doubt}
        received_yet_rejected |= rejected & set(service.stored)
    return made, received_yet_rejected


def test_calls_of_several_threads_cut_by_resets_are_never_rejected_once_received():
    """One LogClient shared by threads: a connection carries some calls and is reset, the other threads' calls open
    new ones (each a new subchannel, each reset at once), while the watch lags behind. A call the service received
    was counted rejected: 1 to 3 calls in 2 to 4 of 10-12 runs of 8 threads, seen by a new user; this test failed 2
    of 4 runs of one round."""
    made, received_yet_rejected = cut_calls_of_several_threads()
    assert made == 3 * 48 and not received_yet_rejected, sorted(received_yet_rejected)


def test_a_call_past_its_deadline_is_in_doubt():
    service = HostileLogService(answer_after=1.0)
    with running(service) as target, LogClient(target, timeout=0.3) as client:
        result = client.write_log("answered too late")
    assert_in_doubt(result, "DEADLINE_EXCEEDED", service)


def test_a_batch_cut_mid_call_has_every_entry_in_doubt():
    service = HostileLogService(answer_after=2.0)
    with running(service, max_connection_age_ms=300, grace_ms=100) as target, LogClient(target) as client:
        batch = client.batch_write_logs([{"message": f"entry {n}"} for n in range(5)])
    assert (batch.success_count, batch.in_doubt_count, service.stored[""]) == (0, 5, 5)


def test_the_asyncio_client_classifies_a_cut_call_in_doubt_too():
    service = HostileLogService(answer_after=2.0)

    async def write(target: str):
        async with AsyncLogClient(target) as client:
            return await client.write_log("cut by the connection's age")

    with running(service, max_connection_age_ms=300, grace_ms=100) as target:
        result = asyncio.run(write(target))
    assert_in_doubt(result, "UNAVAILABLE", service)


def test_a_refusal_by_the_service_is_rejected():
    service = HostileLogService(refuse=grpc.StatusCode.RESOURCE_EXHAUSTED)
    with running(service) as target, LogClient(target) as client:
        result = client.write_log("refused")
    assert (result.status, result.in_doubt, sum(service.stored.values())) == ("RESOURCE_EXHAUSTED", False, 0)


def test_a_target_that_refuses_connections_rejects_the_call_it_never_sent():
    with LogClient(f"127.0.0.1:{free_port()}", timeout=2) as client:
        result = client.write_log("nowhere to go")
    assert (result.status, result.in_doubt) == ("UNAVAILABLE", False), result


def test_a_deadline_while_the_connection_never_opened_rejects_the_call_it_never_sent():
    """TCP accepted, HTTP/2 never: the channel never became READY, so the request never left."""
    silent = SilentListener()
    with LogClient(silent.target, timeout=0.5) as client:
        result = client.write_log("stuck before the wire")
    silent.close()
    assert (result.status, result.in_doubt) == ("DEADLINE_EXCEEDED", False), result


def test_a_stream_the_server_refused_is_rejected_and_named_apart():
    """HTTP/2 REFUSED_STREAM: the server processed none of the call (grpc does not retry it: one stream a call)."""
    refuser = StreamRefuser()
    with LogClient(refuser.target) as client:
        write = client.write_log("refused before any processing")
        batch = client.batch_write_logs([{"message": f"entry {n}"} for n in range(3)])
    refuser.close()
    assert refuser.refused == 2, refuser.refused
    assert (write.success, write.status, write.cause, write.in_doubt) == (False, "UNAVAILABLE", "REFUSED_STREAM", False)
    assert write.error_message.startswith("REFUSED_STREAM: "), write
    assert (batch.success_count, batch.in_doubt_count, batch.results[0].cause) == (0, 0, "REFUSED_STREAM"), batch


def test_the_asyncio_client_rejects_a_refused_stream_too():
    refuser = StreamRefuser()

    async def write():
        async with AsyncLogClient(refuser.target) as client:
            return await client.write_log("refused before any processing")

    result = asyncio.run(write())
    refuser.close()
    assert (result.status, result.cause, result.in_doubt) == ("UNAVAILABLE", "REFUSED_STREAM", False), result


@pytest.mark.slow
def test_a_locust_run_counts_refused_streams_rejected_and_the_audit_stays_exact(tmp_path):
    """Two connections per process: the first (the preflight's, users 0 and 2) reaches a real server, the second
    (users 1 and 3) meets a server that refuses every stream, the audit's own (the third) the real server again.
    Refused calls are rejected logs named REFUSED_STREAM, none in doubt, and the audit finds exactly the
    acknowledged logs."""
    server = start_server_process("--flush-period", "0.1")
    refuser = StreamRefuser(upstream=server.target, refuse={2})
    try:
        run = run_locust("single", refuser.target, tmp_path, "--grpc-connections", "2", "--max-requests", "400",
                         "--no-freshness", users=4, run_time="60s")  # fmt: skip
    finally:
        refuser.close()
        server.kill()
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr[-3000:]  # failed calls: Locust's 1
    logs, failures, audit = run.logs()["WriteLog"], run.failures(), run.json("audit")
    refused = failures.pop(next(error for error in failures if error.startswith("REFUSED_STREAM: ")))
    assert failures == {} and refuser.refused >= refused > 0, (failures, refuser.refused, refused)
    assert (logs["Logs Rejected"], logs["Logs In Doubt"], logs["Logs Acked"] + refused) == (refused, 0, 400), logs
    assert (audit["status"], audit["persisted"], audit["in_doubt"]) == ("ok", logs["Logs Acked"], 0), audit


@pytest.mark.slow
def test_a_locust_run_against_max_connection_age_counts_the_cut_calls_in_doubt_not_rejected(tmp_path):
    """Issue 20: 140 calls cut by max connection age were counted rejected, and the audit then found
    ``unexpected=140`` logs. Cut calls are in doubt, and the audit accounts for every stored log."""
    service = HostileLogService(answer_after=0.4)
    server, port = serve(service, max_connection_age_ms=1000, grace_ms=100)
    try:
        run = run_locust("single", f"grpc://127.0.0.1:{port}", tmp_path, "--grpc-timeout", "3", users=10, run_time="4s")
    finally:
        server.stop(None)
    logs = run.logs()["WriteLog"]
    audit = run.json("audit")
    failures = run.failures()
    assert failures and all(error.startswith("UNAVAILABLE: ") for error in failures), failures
    assert logs["Logs Rejected"] == 0 and logs["Logs In Doubt"] == sum(failures.values()) > 0, logs
    stored = service.stored[audit["run_id"]]
    assert audit["acked"] <= stored <= audit["acked"] + audit["in_doubt"], (audit, stored)
    assert (audit["unexpected"], audit["lost_min"]) == (0, 0), audit
