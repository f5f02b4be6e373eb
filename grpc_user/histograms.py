"""Latency histograms keyed by (name, outcome): HdrHistogram, 1 µs resolution, 1 µs to 1 hour, 3 significant digits.

One module for every latency the suite records (a call's latency and service time, a capacity step's
latency, any later measure such as a log's visibility latency): record an int of microseconds on the
hot path (``LatencyHistograms.record``), send and merge histograms exactly in HdrHistogram's standard
encoding (compressed, base64: the form every HdrHistogram library reads), read percentiles that never
lie outside the smallest and largest value recorded.

HdrHistogram keeps each value to 3 significant digits (within 0.1%) in constant memory and adds
histograms exactly, bucket by bucket. The smallest and largest values are kept exact beside it
(HdrHistogram's own, after decoding, are the edges of their buckets), so a percentile is clamped to
what was really measured: ``--latency-ms 1055`` gives p95 = max = 1,059.3 ms, never 1,100.

Shapes: a key is ``(name, outcome)``; a report (what a worker sends, what a run file holds) is a
list of ``[name, outcome, encoded, min_us, max_us]``; values are microseconds, figures in
milliseconds with microsecond decimals (0.317).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour
SIGNIFICANT_DIGITS = 3
AGGREGATED = "Aggregated"
PERCENTILES = (50.0, 90.0, 95.0, 99.0)
# The usual HDR percentile plot's points: up to 99.999% where the run has enough calls for them.
DISTRIBUTION_PERCENTILES = (0.0, 25.0, 50.0, 75.0, 90.0, 95.0, 97.5, 99.0, 99.5, 99.75, 99.9, 99.95, 99.975, 99.99,
                            99.995, 99.999, 100.0)  # fmt: skip

Key = tuple[str, str]
Report = list[list[Any]]  # [[name, outcome, encoded, min_us, max_us], ...]


class HistogramError(ValueError):
    """An encoded histogram that cannot be read (not HdrHistogram's encoding, or another range)."""


def new_histogram() -> HdrHistogram:
    """An empty histogram: 1 µs to 1 hour, 3 significant digits."""
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


@dataclass(frozen=True)
class Summary:
    """Figures of one histogram, in milliseconds (microsecond decimals); percentiles keyed 50.0, 90.0, ..."""

    count: int
    mean_ms: float
    min_ms: float
    max_ms: float
    percentiles_ms: dict[float, float]


# HdrHistogram's own indexing (``_counts_index_for``), taken from a histogram of the suite's range and precision,
# so that ``Latencies.record`` can count a value with a few integer operations instead of four method calls.
_LAYOUT = new_histogram()
_SUB_BUCKET_MASK = _LAYOUT.sub_bucket_mask
_BUCKET_SHIFT = _LAYOUT.unit_magnitude + _LAYOUT.sub_bucket_half_count_magnitude + 1
_UNIT_MAGNITUDE = _LAYOUT.unit_magnitude
_HALF_COUNT_MAGNITUDE = _LAYOUT.sub_bucket_half_count_magnitude
_HALF_COUNT = _LAYOUT.sub_bucket_half_count
del _LAYOUT


class Latencies:
    """One HdrHistogram with the exact count, smallest and largest value (µs) beside it.

    ``record`` is the hot path: HdrHistogram's bucket index in a few integer operations, one counter
    incremented, the exact count, min and max kept here; HdrHistogram's own totals are set from them
    whenever the histogram is added, encoded or read (``synced``).
    """

    __slots__ = ("histogram", "total", "min_us", "max_us", "_counts")

    def __init__(self, histogram: HdrHistogram | None = None, total: int = 0, min_us: int = sys.maxsize,
                 max_us: int = -1) -> None:  # fmt: skip
        self.histogram = histogram if histogram is not None else new_histogram()
        self._counts = self.histogram.counts
        self.total, self.min_us, self.max_us = total, min_us, max_us

    def record(self, micros: int, times: int = 1) -> None:
        """Count ``times`` values of ``micros`` µs (above one hour: counted as one hour)."""
        value = micros if micros < HIGHEST_US else HIGHEST_US
        bucket = (value | _SUB_BUCKET_MASK).bit_length() - _BUCKET_SHIFT
        self._counts[((bucket + 1) << _HALF_COUNT_MAGNITUDE) + (value >> (bucket + _UNIT_MAGNITUDE)) - _HALF_COUNT] \
            += times  # fmt: skip
        self.total += times
        if value < self.min_us:
            self.min_us = value
        if value > self.max_us:
            self.max_us = value

    def synced(self) -> HdrHistogram:
        """The HdrHistogram with its total, min and max set from the exact ones (before it is added or encoded)."""
        histogram = self.histogram
        histogram.total_count = self.total
        histogram.min_value = self.min_us if self.total else sys.maxsize
        histogram.max_value = self.max_us if self.total else 0
        return histogram

    @property
    def count(self) -> int:
        """How many values."""
        return self.total

    def low(self) -> int:
        """The smallest value recorded (µs; exact)."""
        return self.min_us

    def high(self) -> int:
        """The largest value recorded (µs; exact)."""
        return self.max_us

    def add(self, other: Latencies) -> None:
        """Add ``other``'s values, exactly (bucket by bucket)."""
        if not other.total:
            return
        self.synced().add(other.synced())
        self.total += other.total
        self.min_us, self.max_us = min(self.min_us, other.min_us), max(self.max_us, other.max_us)

    def encode(self) -> tuple[str, int, int]:
        """HdrHistogram's standard encoding (V2, compressed, base64) and the exact min and max (µs)."""
        return self.synced().encode().decode("ascii"), self.min_us, self.max_us

    @classmethod
    def decode(cls, encoded: str, min_us: int, max_us: int) -> Latencies:
        """The histogram of ``encode``; HistogramError when it is not one of this range and precision."""
        try:
            histogram = HdrHistogram.decode(encoded.encode("ascii"))
        except Exception as error:  # hdrh raises TypeError, zlib.error, its own cookie and length errors
            raise HistogramError(f"not an encoded HdrHistogram ({type(error).__name__}: {error})") from None
        if (histogram.lowest_trackable_value, histogram.highest_trackable_value,
                histogram.significant_figures) != (LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS):  # fmt: skip
            raise HistogramError(f"a histogram of {histogram.lowest_trackable_value}.."
                                 f"{histogram.highest_trackable_value} at {histogram.significant_figures} digits, not "
                                 f"{LOWEST_US}..{HIGHEST_US} at {SIGNIFICANT_DIGITS}")  # fmt: skip
        if not isinstance(min_us, int) or not isinstance(max_us, int) or not 0 <= min_us <= max_us:
            raise HistogramError(f"min {min_us!r} and max {max_us!r} µs are not two whole numbers, min <= max")
        if not histogram.get_total_count():
            raise HistogramError("an empty histogram")
        return cls(histogram, histogram.get_total_count(), min_us, max_us)

    def recorded(self) -> list[tuple[int, int, int]]:
        """(lowest, highest, count) of every HdrHistogram bucket holding values, ascending (µs)."""
        histogram = self.histogram
        counts = histogram.counts[: histogram.counts_len]
        buckets = []
        for index in [index for index, count in enumerate(counts) if count]:
            lowest = histogram.get_value_from_index(index)
            buckets.append((lowest, histogram.get_highest_equivalent_value(lowest), counts[index]))
        return buckets

    def value_at(self, percentile: float) -> int:
        """The value (µs) at ``percentile`` (0..100), within [min, max]."""
        return self.values_at((percentile,))[percentile]

    def values_at(
        self, percentiles: Iterable[float], buckets: list[tuple[int, int, int]] | None = None
    ) -> dict[float, int]:
        """Several percentiles in one pass (µs), each within [min, max]: HdrHistogram's definition (the highest value
        equivalent to the one where the cumulative count reaches p% of the total, rounded), clamped to what was
        recorded. An empty histogram gives 0."""
        wanted = sorted(set(percentiles))
        total = self.count
        if not total:
            return dict.fromkeys(wanted, 0)
        buckets = self.recorded() if buckets is None else buckets
        result, seen, index = {}, 0, 0
        for percentile in wanted:
            target = max(int(min(percentile, 100.0) * total / 100 + 0.5), 1)
            while seen + buckets[index][2] < target and index < len(buckets) - 1:
                seen += buckets[index][2]
                index += 1
            lowest, highest, _ = buckets[index]
            result[percentile] = self._clamp(highest if percentile else lowest)
        return result

    def _clamp(self, value: int) -> int:
        return min(max(value, self.low()), self.high())

    def mean(self, buckets: list[tuple[int, int, int]] | None = None) -> float:
        """The mean (µs) to 3 significant digits: each bucket counted at its middle, within [min, max]."""
        total = self.count
        if not total:
            return 0.0
        buckets = self.recorded() if buckets is None else buckets
        middle = sum(count * (lowest + (highest - lowest + 1) // 2) for lowest, highest, count in buckets)
        return min(max(middle / total, self.low()), self.high())

    def summary(self, percentiles: Iterable[float] = PERCENTILES) -> Summary:
        """Count, mean, min, max and ``percentiles`` in ms."""
        buckets = self.recorded()
        values = self.values_at(percentiles, buckets)
        return Summary(self.count, round(self.mean(buckets) / 1000, 3), self.low() / 1000, self.high() / 1000,
                       {percentile: value / 1000 for percentile, value in sorted(values.items())})  # fmt: skip

    def count_at_or_below(self, bounds_us: Iterable[int]) -> list[int]:
        """Cumulative counts of values at or below each bound (µs, ascending): a Prometheus histogram's buckets.
        A value counts by the lowest value of its HdrHistogram bucket (exact below 2,048 µs, within 0.1% above)."""
        bounds, counts, seen, index = list(bounds_us), [], 0, 0
        for lowest, _highest, count in self.recorded():
            while index < len(bounds) and lowest > bounds[index]:
                counts.append(seen)
                index += 1
            seen += count
        return counts + [seen] * (len(bounds) - index)

    def since(self, earlier: Latencies) -> Latencies:
        """The values recorded after ``earlier`` (a copy of this histogram taken before): a step's own histogram."""
        before = {lowest: count for lowest, _highest, count in earlier.recorded()}
        step = Latencies()
        for lowest, _highest, count in self.recorded():
            if count > before.get(lowest, 0):
                step.record(lowest, count - before.get(lowest, 0))
        return step

    def copy(self) -> Latencies:
        """An independent copy."""
        twin = Latencies()
        twin.add(self)
        return twin


class LatencyHistograms:
    """Latencies keyed by (name, outcome), recorded in µs; merged, encoded and summarized as a whole.

    ``record`` is the hot path: one dict lookup and ``Latencies.record``. A worker
    ``drain``s what it recorded since its last report and sends it; the master ``merge``s it.
    """

    def __init__(self) -> None:
        self.by_key: dict[Key, Latencies] = {}

    def record(self, name: str, outcome: str, micros: int) -> None:
        """Count one value of ``micros`` µs (above one hour: counted as one hour) under (name, outcome)."""
        latencies = self.by_key.get((name, outcome))
        if latencies is None:
            latencies = self.by_key[(name, outcome)] = Latencies()
        latencies.record(micros)

    def reset(self) -> None:
        """Forget every value (a new test, or a reset of Locust's stats)."""
        self.by_key = {}

    def encode(self) -> Report:
        """Every histogram as ``[name, outcome, encoded, min_us, max_us]`` (msgpack- and JSON-friendly)."""
        return [[name, outcome, *latencies.encode()] for (name, outcome), latencies in sorted(self.by_key.items())
                if latencies.count]  # fmt: skip

    def drain(self) -> Report:
        """``encode`` what was recorded since the last drain, and start again from empty (a worker's report)."""
        report = self.encode()
        self.by_key = {}
        return report

    def merge(self, report: Report) -> None:
        """Add the histograms of an ``encode`` or ``drain`` (a worker's report, a run file); HistogramError
        when an entry is malformed."""
        for entry in report:
            if not isinstance(entry, list | tuple) or len(entry) != 5:
                raise HistogramError(f"expected [name, outcome, encoded, min_us, max_us], got {entry!r:.80}")
            name, outcome, encoded, min_us, max_us = entry
            self.add(str(name), str(outcome), Latencies.decode(str(encoded), min_us, max_us))

    @classmethod
    def decode(cls, report: Report) -> LatencyHistograms:
        """The histograms of an ``encode``."""
        histograms = cls()
        histograms.merge(report)
        return histograms

    def add(self, name: str, outcome: str, latencies: Latencies) -> None:
        """Add ``latencies`` under (name, outcome)."""
        mine = self.by_key.get((name, outcome))
        if mine is None:
            mine = self.by_key[(name, outcome)] = Latencies()
        mine.add(latencies)

    def names(self) -> list[str]:
        """The names recorded, sorted."""
        return sorted({name for name, _ in self.by_key})

    def combined(self, name: str | None = None, outcome: str | None = None) -> Latencies:
        """The sum over every key matching ``name`` and ``outcome`` (None: any)."""
        total = Latencies()
        for (key_name, key_outcome), latencies in self.by_key.items():
            if (name is None or key_name == name) and (outcome is None or key_outcome == outcome):
                total.add(latencies)
        return total

    def rows(self) -> Iterator[tuple[str, str, Summary]]:
        """(name, outcome, summary) per key, sorted, then (Aggregated, outcome, summary) per outcome over every name."""
        for (name, outcome), latencies in sorted(self.by_key.items()):
            if latencies.count:
                yield name, outcome, latencies.summary()
        for outcome in sorted({outcome for _, outcome in self.by_key}):
            merged = self.combined(outcome=outcome)
            if merged.count:
                yield AGGREGATED, outcome, merged.summary()
