"""Customer insights: RFM scores and segments, tier rules, the explainable churn-risk score.

Pure functions over plain data, no I/O: the event handlers, the nightly recompute and the
API build on them. docs/customers.md ("Insights") states the formulas and tables.
"""

from customer_svc.insights.churn import (
    FACTORS,
    ChurnInputs,
    ChurnRisk,
    EpisodeChange,
    EpisodeStep,
    OrderHistory,
    Reason,
    TicketFact,
    churn_risk,
    episode_step,
    order_history,
    repeated_contacts,
    risk_band,
)
from customer_svc.insights.rfm import (
    CUT_FRACTIONS,
    Direction,
    OrderFact,
    QuintileBoundaries,
    RfmBoundaries,
    RfmScores,
    RfmValues,
    quintile_boundaries,
    quintile_score,
    quintile_scores,
    rfm_boundaries,
    rfm_scores,
    rfm_values,
)
from customer_svc.insights.segments import SEGMENT_KEYS, SEGMENTS, Segment, SegmentKey, classify, segment_of
from customer_svc.insights.settings import ChurnSettings, RfmSettings, SegmentThresholds
from customer_svc.insights.tiers import TierCondition, TierDecision, TierFacts, TierRule, TierRules, decide_tier

__all__ = [
    "CUT_FRACTIONS",
    "FACTORS",
    "SEGMENTS",
    "SEGMENT_KEYS",
    "ChurnInputs",
    "ChurnRisk",
    "ChurnSettings",
    "Direction",
    "EpisodeChange",
    "EpisodeStep",
    "OrderFact",
    "OrderHistory",
    "QuintileBoundaries",
    "Reason",
    "RfmBoundaries",
    "RfmScores",
    "RfmSettings",
    "RfmValues",
    "Segment",
    "SegmentKey",
    "SegmentThresholds",
    "TicketFact",
    "TierCondition",
    "TierDecision",
    "TierFacts",
    "TierRule",
    "TierRules",
    "churn_risk",
    "classify",
    "decide_tier",
    "episode_step",
    "order_history",
    "quintile_boundaries",
    "quintile_score",
    "quintile_scores",
    "repeated_contacts",
    "rfm_boundaries",
    "rfm_scores",
    "rfm_values",
    "risk_band",
    "segment_of",
]
