"""The eight RFM segments of the common Chinese model (RFM 八大客户类型), pure.

Each of R, F and M is *high* when its quintile score reaches a threshold (default 4: better
than at least 60 % of the base, so the middle quintile counts as low) and *low* otherwise;
the 2 x 2 x 2 combinations are the eight segments. M decides 重要 (important, high M) versus
一般 (general, low M); R and F decide which of value / development / retention / win-back:

=====  =====  =====  =======================  =====================  =======================
R      F      M      key                      zh-CN                  en
=====  =====  =====  =======================  =====================  =======================
high   high   high   important_value          重要价值客户           Important value
high   low    high   important_development    重要发展客户           Important development
low    high   high   important_retention      重要保持客户           Important retention
low    low    high   important_win_back       重要挽留客户           Important win-back
high   high   low    general_value            一般价值客户           General value
high   low    low    general_development      一般发展客户           General development
low    high   low    general_retention        一般保持客户           General retention
low    low    low    general_win_back         一般挽留客户           General win-back
=====  =====  =====  =======================  =====================  =======================

The keys are stable machine names (stored, filtered on, sent in events); the names are for
people and may be reworded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from customer_svc.insights.rfm import RfmScores
from customer_svc.insights.settings import SegmentThresholds

SegmentKey = Literal[
    "important_value",
    "important_development",
    "important_retention",
    "important_win_back",
    "general_value",
    "general_development",
    "general_retention",
    "general_win_back",
]


@dataclass(frozen=True, slots=True)
class Segment:
    key: SegmentKey
    name_zh: str
    name_en: str
    high_r: bool
    high_f: bool
    high_m: bool


SEGMENTS: tuple[Segment, ...] = (
    Segment("important_value", "重要价值客户", "Important value", True, True, True),
    Segment("important_development", "重要发展客户", "Important development", True, False, True),
    Segment("important_retention", "重要保持客户", "Important retention", False, True, True),
    Segment("important_win_back", "重要挽留客户", "Important win-back", False, False, True),
    Segment("general_value", "一般价值客户", "General value", True, True, False),
    Segment("general_development", "一般发展客户", "General development", True, False, False),
    Segment("general_retention", "一般保持客户", "General retention", False, True, False),
    Segment("general_win_back", "一般挽留客户", "General win-back", False, False, False),
)
SEGMENT_KEYS: tuple[SegmentKey, ...] = tuple(segment.key for segment in SEGMENTS)
SEGMENTS_BY_KEY: dict[str, Segment] = {segment.key: segment for segment in SEGMENTS}
_BY_CLASS: dict[tuple[bool, bool, bool], Segment] = {(s.high_r, s.high_f, s.high_m): s for s in SEGMENTS}

DEFAULT_THRESHOLDS = SegmentThresholds()


def classify(r: int, f: int, m: int, thresholds: SegmentThresholds = DEFAULT_THRESHOLDS) -> Segment:
    """The segment of three quintile scores; every (r, f, m) maps to exactly one segment."""
    return _BY_CLASS[(r >= thresholds.r, f >= thresholds.f, m >= thresholds.m)]


def segment_of(scores: RfmScores | None, thresholds: SegmentThresholds = DEFAULT_THRESHOLDS) -> Segment | None:
    """The segment of a customer's scores; None for a customer without scores (no orders, or a
    base too small to rank)."""
    if scores is None:
        return None
    return classify(scores.r, scores.f, scores.m, thresholds)
