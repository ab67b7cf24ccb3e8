"""Histogram bins and percentile estimates."""

import pytest
from hypothesis import given, strategies as st

from analytics_svc.readmodel import histogram as h


def test_bins_are_half_open_and_skew_goes_to_the_first():
    assert h.hist_bin(-3) == 0
    assert h.hist_bin(0) == 0
    assert h.hist_bin(0.99) == 0
    assert h.hist_bin(1) == 1
    assert h.hist_bin(59.9) == h.HIST_EDGES_MINUTES.index(50)
    assert h.hist_bin(60) == h.HIST_EDGES_MINUTES.index(60)
    assert h.hist_bin(10**7) == h.BINS - 1


def test_add_and_take_back_leaves_nothing():
    counts = h.add(h.one_hot(42), h.one_hot(7))
    assert sum(counts) == 2
    assert h.add(counts, h.add(h.one_hot(42, -1), h.one_hot(7, -1))) == [0] * h.BINS
    assert h.add(None, None) is None
    assert h.add(None, [1]) == [1]


def test_percentile_interpolates_inside_the_bin():
    counts = h.merge([h.one_hot(30.0), h.one_hot(30.0), h.one_hot(45.0), h.one_hot(45.0)])
    # 4 values: two in [30, 40), two in [40, 50); the median's rank (2 of 4) ends the first bin
    assert h.percentile(counts, 50) == pytest.approx(40.0)
    assert h.percentile(counts, 100) == pytest.approx(50.0)
    assert h.percentile([0] * h.BINS, 50) is None
    assert h.percentile(h.one_hot(10**6), 90) == h.HIST_EDGES_MINUTES[-1]
    with pytest.raises(ValueError):
        h.percentile(counts, 101)


@given(st.lists(st.floats(min_value=0, max_value=200_000, allow_nan=False), min_size=1, max_size=60),
       st.sampled_from([10, 50, 90]))
def test_estimate_falls_in_the_bin_of_the_exact_value(values, q):
    from analytics_svc.metrics.rules import percentile

    estimate = h.percentile(h.merge(h.one_hot(v) for v in values), q)
    ordered = sorted(values)
    exact_low = ordered[max(0, -(-len(values) * q // 100) - 1)]
    low = h.HIST_EDGES_MINUTES[h.hist_bin(exact_low)]
    nxt = h.hist_bin(exact_low) + 1
    high = h.HIST_EDGES_MINUTES[nxt] if nxt < h.BINS else float("inf")
    assert low <= estimate <= high
    assert percentile(values, q) is not None
