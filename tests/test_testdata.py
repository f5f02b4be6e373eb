"""Generated test data: the seeds' fields, exact message size, determinism under a seed."""

import time

from grpc_user.locust.settings.suite import MAX_MESSAGE_BYTES
from grpc_user.pb import log_service_pb2 as pb
from grpc_user.testdata import MIN_TEMPLATES, MONITOR_TYPES, POOL_BYTES, TEMPLATE_COUNT, LogDataGenerator, template_pool

SEED_FIELDS = {"run_id", "adv_id", "aweme_id", "plan_id", "monitor_type", "co_id", "client_type"}


def generator(seed=1, user_index=0, message_bytes=128):
    return LogDataGenerator(run_id="r-1", service_name="svc", message_bytes=message_bytes, seed=seed,
                            user_index=user_index)  # fmt: skip


def stable(entry: pb.LogEntry) -> pb.LogEntry:
    copy = pb.LogEntry()
    copy.CopyFrom(entry)
    copy.timestamp = ""
    return copy


def test_entries_carry_the_seed_clients_fields_and_the_run_id():
    entry = generator().write_request().log_entry
    assert set(entry.metadata) == SEED_FIELDS
    assert entry.metadata["run_id"] == "r-1" and entry.service_name == "svc"
    assert entry.metadata["monitor_type"] in MONITOR_TYPES
    assert entry.timestamp and entry.trace_id.startswith("trace-") and entry.span_id.startswith("span-")


def test_trace_and_span_ids_are_sequential_per_user():
    data = generator()
    ids = [data.write_request().log_entry.trace_id for _ in range(3)]
    assert [int(trace.rsplit("-", 1)[1]) for trace in ids] == [1, 2, 3]


def test_message_has_exactly_the_requested_size():
    for size in (0, 1, 100, 5000):
        assert len(generator(message_bytes=size).write_request().log_entry.message.encode()) == size


def test_same_seed_and_user_give_the_same_entries():
    first, second = generator(seed=7, user_index=3), generator(seed=7, user_index=3)
    for _ in range(20):
        assert stable(first.write_request().log_entry) == stable(second.write_request().log_entry)
    first_entries, second_entries = first.batch_request(5).log_entries, second.batch_request(5).log_entries
    assert [stable(e) for e in first_entries] == [stable(e) for e in second_entries]


def test_other_users_and_seeds_give_other_entries():
    base = [stable(generator(seed=7).write_request().log_entry) for _ in range(1)]
    assert base != [stable(generator(seed=7, user_index=1).write_request().log_entry)]
    assert base != [stable(generator(seed=8).write_request().log_entry)]


def test_levels_and_ids_vary_across_entries():
    entries = generator().batch_request(500).log_entries
    assert {entry.level for entry in entries} == {0, 1, 2, 3, 4}
    assert len({entry.metadata["adv_id"] for entry in entries}) > 100
    assert len({entry.trace_id for entry in entries}) == 500


def test_fields_give_write_log_keywords_for_custom_tasks():
    fields = generator().fields()
    assert {"message", "service_name", "level", "trace_id", "span_id"} <= set(fields)
    assert fields["level"] in ("DEBUG", "INFO", "WARN", "ERROR", "FATAL")


def pool_cpu_seconds(message_bytes: int, run_id: str) -> float:
    started = time.process_time()
    template_pool(run_id, "svc", message_bytes, 1)
    return time.process_time() - started


def test_the_pool_holds_a_few_mib_of_varied_text_at_any_accepted_message_size():
    for size in (0, 1, 128, 5000, 100_000, MAX_MESSAGE_BYTES):
        pool = template_pool("r-size", "svc", size, 1)
        assert MIN_TEMPLATES <= len(pool) <= TEMPLATE_COUNT, (size, len(pool))
        assert {len(entry.message) for entry in pool} == {size}
        assert sum(len(entry.message) for entry in pool) <= POOL_BYTES, size
        if size >= 100:  # 63 letters cannot make 1024 distinct 1-character messages
            assert len({entry.message for entry in pool}) == len(pool), f"{size}: templates share a message"
    assert len(template_pool("r-size", "svc", 128, 1)) == TEMPLATE_COUNT, "small messages keep the full pool"


def test_a_pool_of_large_messages_costs_little_more_cpu_than_one_of_small_messages():
    """Measured in the same process, CPU seconds (a busy machine does not move the ratio much): 100 kB messages cost
    ~3x a pool of 128 B ones; with a rng.choices per message they cost ~500x (1024 x 100 kB of Python draws)."""
    small = min(pool_cpu_seconds(128, f"r-small-{attempt}") for attempt in range(3))
    large = pool_cpu_seconds(100_000, "r-large")
    assert large < 30 * small, f"100 kB pool: {large:.3f} CPU-s, 128 B pool: {small:.3f} CPU-s"
