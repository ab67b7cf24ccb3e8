"""Shapes of the insights API (documentation; reads render rows with orjson)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import BaseModel

from helpdesk_common.pagination import DEFAULT_LIMIT, MAX_LIMIT

from ..fields import NO_NUL
from ..insights.segments import SegmentKey
from ..insights.tiers import TierRule

Band = Literal["low", "medium", "high"]


class ReasonRead(BaseModel):
    """``{"factor", "points", "message": {"en", "zh-CN"}}``: the points of the reasons add up to the score."""

    factor: str
    points: int
    message: dict[str, str]


class RfmRead(BaseModel):
    recency_days: int | None
    frequency: int
    monetary: str
    r: int | None
    f: int | None
    m: int | None
    segment: SegmentKey | None
    segment_name: dict[str, str] | None
    computed_at: datetime | None


class ChurnRead(BaseModel):
    score: int | None
    band: Band | None
    reasons: list[ReasonRead]
    episode_active: bool
    computed_at: datetime | None


class CustomerInsights(BaseModel):
    customer_id: uuid.UUID
    rfm: RfmRead
    churn_risk: ChurnRead


class SegmentShare(BaseModel):
    segment: SegmentKey
    name_en: str
    name_zh: str
    count: int
    share: float


class SegmentDistribution(BaseModel):
    items: list[SegmentShare]
    total: int
    computed_at: datetime | None


class AtRiskCustomer(BaseModel):
    customer_id: uuid.UUID
    name: str | None
    tier: str | None
    account_owner_id: uuid.UUID | None
    score: int
    band: Band
    episode_active: bool
    segment: SegmentKey | None
    reasons: list[ReasonRead]
    computed_at: datetime | None


class AtRiskPage(BaseModel):
    items: list[AtRiskCustomer]
    next_cursor: str | None


class AtRiskQuery(BaseModel):
    band: Band | None = None
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT
    cursor: Annotated[str | None, Query(max_length=512, pattern=NO_NUL)] = None


class TierRulesRead(BaseModel):
    rules: list[TierRule]
    version: int
    updated_at: datetime


class RunCreated(BaseModel):
    id: uuid.UUID
    status: Literal["queued", "running", "completed", "failed"]


class RunRead(BaseModel):
    id: uuid.UUID
    status: Literal["queued", "running", "completed", "failed"]
    trigger: Literal["nightly", "manual"]
    requested_by: str | None
    scheduled_for: datetime | None
    as_of: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    customers_scored: int
    failure: str | None


def run_read(row: Any) -> dict[str, Any]:
    return {name: row[name] for name in RunRead.model_fields}
