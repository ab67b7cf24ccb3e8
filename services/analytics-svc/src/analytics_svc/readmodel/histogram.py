"""Duration histograms for percentiles over rollups (pure).

Exact percentiles need every value; rollups keep sums per hour, so p50 / p90 over a trend or a
breakdown come from counts per bin instead. The bins are narrow where help-desk times cluster
(minutes to a few hours) and wide beyond a day, so an estimate is within its bin: at most 1 minute
off below 10 minutes, at most ~25 % of the value above. Exact percentiles (``metrics.rules.percentile``)
are used wherever the values themselves are at hand (the live board's "today" figures).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence

#: lower bounds of the bins in minutes; bin i is [HIST_EDGES_MINUTES[i], HIST_EDGES_MINUTES[i + 1]),
#: the last one is open-ended (90 days and more)
HIST_EDGES_MINUTES: tuple[float, ...] = (
    0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 75, 90, 120, 150, 180, 240, 300, 360,
    480, 600, 720, 960, 1200, 1440, 2160, 2880, 4320, 5760, 7200, 10080, 14400, 20160, 30240, 43200,
    64800, 86400, 129600,
)
BINS = len(HIST_EDGES_MINUTES)


def hist_bin(minutes: float) -> int:
    """The bin of a duration; a negative one (clock skew) is bin 0."""
    if minutes <= 0:
        return 0
    return bisect_right(HIST_EDGES_MINUTES, minutes) - 1


def one_hot(minutes: float, sign: int = 1) -> list[int]:
    """A histogram holding one value (``sign`` -1 takes it back out): a ticket's share of a rollup."""
    counts = [0] * BINS
    counts[hist_bin(minutes)] = sign
    return counts


def add(a: Sequence[int] | None, b: Sequence[int] | None) -> list[int] | None:
    """Element-wise sum; None is an empty histogram (what ``hist_add`` does in SQL)."""
    if a is None:
        return None if b is None else list(b)
    if b is None:
        return list(a)
    longest = max(len(a), len(b))
    return [(a[i] if i < len(a) else 0) + (b[i] if i < len(b) else 0) for i in range(longest)]


def merge(histograms: Iterable[Sequence[int] | None]) -> list[int]:
    """The sum of many histograms (a bucket's hours, a team's rows)."""
    total = [0] * BINS
    for hist in histograms:
        if hist:
            for i, count in enumerate(hist[:BINS]):
                total[i] += count
    return total


def percentile(counts: Sequence[int], q: float) -> float | None:
    """The ``q``-th percentile (0-100) estimated from bin counts: the value at rank q% of n,
    interpolated linearly inside its bin (the open-ended last bin answers its lower bound).
    None when the histogram is empty."""
    if not 0 <= q <= 100:
        raise ValueError("q is a percentage, 0..100")
    n = sum(max(0, c) for c in counts)
    if n == 0:
        return None
    target = n * q / 100
    seen = 0
    for i, count in enumerate(counts):
        if count <= 0:
            continue
        if seen + count >= target:
            low = HIST_EDGES_MINUTES[i]
            if i + 1 >= BINS:
                return float(low)
            high = HIST_EDGES_MINUTES[i + 1]
            return low + (high - low) * max(0.0, target - seen) / count
        seen += count
    return float(HIST_EDGES_MINUTES[min(len(counts), BINS) - 1])  # pragma: no cover - rounding guard
