"""The eight RFM segments: the table itself, and that every score triple lands in exactly one."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from customer_svc.insights.rfm import RfmScores
from customer_svc.insights.segments import SEGMENT_KEYS, SEGMENTS, SEGMENTS_BY_KEY, classify, segment_of
from customer_svc.insights.settings import RfmSettings, SegmentThresholds

# (r, f, m) with the default threshold 4: 4 and 5 are high, 1-3 low
TABLE = [
    ((5, 5, 5), "important_value", "重要价值客户", "Important value"),
    ((4, 3, 4), "important_development", "重要发展客户", "Important development"),
    ((3, 4, 5), "important_retention", "重要保持客户", "Important retention"),
    ((1, 1, 4), "important_win_back", "重要挽留客户", "Important win-back"),
    ((4, 4, 3), "general_value", "一般价值客户", "General value"),
    ((5, 1, 1), "general_development", "一般发展客户", "General development"),
    ((2, 5, 2), "general_retention", "一般保持客户", "General retention"),
    ((3, 3, 3), "general_win_back", "一般挽留客户", "General win-back"),
]


@pytest.mark.parametrize(("scores", "key", "zh", "en"), TABLE)
def test_the_segment_table(scores, key, zh, en):
    segment = classify(*scores)
    assert (segment.key, segment.name_zh, segment.name_en) == (key, zh, en)


def test_eight_distinct_segments_with_stable_keys():
    assert SEGMENT_KEYS == tuple(row[1] for row in TABLE)
    assert len({(s.high_r, s.high_f, s.high_m) for s in SEGMENTS}) == 8
    assert set(SEGMENTS_BY_KEY) == set(SEGMENT_KEYS)


def test_m_decides_important_or_general():
    for segment in SEGMENTS:
        assert segment.key.startswith("important_" if segment.high_m else "general_")
        assert segment.name_zh.startswith("重要" if segment.high_m else "一般")


thresholds = st.builds(SegmentThresholds, r=st.integers(2, 5), f=st.integers(2, 5), m=st.integers(2, 5))


@given(thresholds)
def test_the_mapping_is_total_over_every_score_triple(limits):
    """All 125 (r, f, m) triples map to a segment, and its high/low flags are the triple's."""
    reached = set()
    for r, f, m in itertools.product(range(1, 6), repeat=3):
        segment = classify(r, f, m, limits)
        assert (segment.high_r, segment.high_f, segment.high_m) == (r >= limits.r, f >= limits.f, m >= limits.m)
        assert segment_of(RfmScores(r=r, f=f, m=m), limits) == segment
        reached.add(segment.key)
    assert reached == set(SEGMENT_KEYS)  # 2..5 thresholds leave both classes on every axis


def test_a_better_score_never_turns_high_into_low():
    for r, f, m in itertools.product(range(1, 5), repeat=3):
        base = classify(r, f, m)
        for better in (classify(r + 1, f, m), classify(r, f + 1, m), classify(r, f, m + 1)):
            assert better.high_r >= base.high_r and better.high_f >= base.high_f and better.high_m >= base.high_m


def test_no_scores_no_segment():
    assert segment_of(None) is None


@pytest.mark.parametrize("value", [1, 6, "high"])
def test_thresholds_are_scores_that_leave_both_classes(value):
    with pytest.raises(ValidationError):
        SegmentThresholds(r=value)


def test_thresholds_from_the_environment(monkeypatch):
    monkeypatch.setenv("CUSTOMER_RFM_SEGMENT_HIGH_FROM__M", "3")
    monkeypatch.setenv("CUSTOMER_RFM_WINDOW_DAYS", "180")
    loaded = RfmSettings()
    assert (loaded.segment_high_from, loaded.window_days) == (SegmentThresholds(m=3), 180)
    assert classify(4, 4, 3, loaded.segment_high_from).key == "important_value"
