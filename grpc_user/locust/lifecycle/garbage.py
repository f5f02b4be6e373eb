"""The garbage collector tuned for a load generator: start-up objects frozen, young collections rarer."""

from __future__ import annotations

import gc

YOUNG_GENERATION_THRESHOLD = 10_000


def tune_garbage_collection() -> None:
    """Keep the garbage collector off the hot path (``make bench``: 6 to 7 CPU-µs per WriteLog).

    What start-up made (Locust, the locustfile, grpc: some 60,000 objects) moves out of its reach, as Locust does
    before ``--processes`` forks, so that the full collections that calls in flight trigger every few thousand
    calls walk only what the test makes; and the youngest generation is collected every 10,000 net allocations
    instead of 700: each collection walks the objects of the calls in flight, whatever the threshold.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, *gc.get_threshold()[1:])
