"""Reference servers as replicas over one store: several processes write one SQLite file (WAL) and every
replica's QueryLog sees every replica's logs, as the real service's replicas share MongoDB."""

from __future__ import annotations

import pytest

from grpc_user import LogClient
from grpc_user.pb import log_service_pb2 as pb
from reference_server.storage import LogStore


def entries(run_id: str, count: int) -> list[pb.LogEntry]:
    return [pb.LogEntry(message=f"m{i}", metadata={"run_id": run_id}) for i in range(count)]


def test_two_stores_over_one_file_store_every_batch_each_writes(tmp_path):
    path = str(tmp_path / "shared.db")
    first, second = LogStore(path), LogStore(path)
    try:
        for _ in range(3):
            assert first.store(entries("r", 10)) == 10
            assert second.store(entries("r", 10)) == 10
        query = pb.QueryLogRequest(metadata_filters={"run_id": "r"}, limit=100)
        for store in (first, second):
            logs, total = store.query(query)
            assert total == 60
            assert len({log.id for log in logs}) == 60  # ids stay unique across the writers
    finally:
        first.close()
        second.close()


@pytest.mark.slow
def test_replicas_started_on_one_db_each_see_the_logs_the_others_stored(serve, tmp_path):
    path = str(tmp_path / "shared.db")
    replicas = [serve("--db", path) for _ in range(3)]
    for index, replica in enumerate(replicas):
        with LogClient(replica.target, timeout=5) as client:
            assert client.batch_write_logs([{"message": f"from {index}", "run_id": "shared"}] * 50).success_count == 50
    for replica in replicas:
        replica.stop()
    for replica in [serve("--db", path), serve("--db", path)]:
        with LogClient(replica.target, timeout=5) as client:
            assert client.query_logs(run_id="shared", limit=1).total_count == 150
