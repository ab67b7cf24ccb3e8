"""Pydantic shapes of the reports (the OpenAPI document; bodies are built by ``service``)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field


class Point(BaseModel):
    bucket: str = Field(description="the bucket's local start, RFC 3339 with its offset")
    start: datetime
    end: datetime
    value: float | None = Field(description="null when the metric has no denominator in the bucket")
    n: int = Field(description="what the value counts or averages over (tickets, replies, answers, cycles)")


class Series(BaseModel):
    key: str = Field(description="'all' (the caller's scope), a dimension value, or 'other'")
    points: list[Point]


class PreviousPeriod(BaseModel):
    from_: datetime = Field(alias="from")
    to: datetime
    series: list[Series]


class TrendsRead(BaseModel):
    metric: str
    unit: str
    direction: str
    interval: str
    tz: str
    from_: datetime = Field(alias="from")
    to: datetime
    by: str | None
    series: list[Series]
    previous: PreviousPeriod | None


class Figure(BaseModel):
    key: str
    value: float | None
    n: int


class BreakdownRead(BaseModel):
    metric: str
    unit: str
    direction: str
    by: str
    tz: str
    from_: datetime = Field(alias="from")
    to: datetime
    items: list[Figure]
    truncated: bool


class RankedFigure(Figure):
    rank: int


class LeaderboardRead(BaseModel):
    metric: str
    unit: str
    direction: str = Field(description="lower_is_better for times: the first is the best")
    entity: str
    period: str
    tz: str
    from_: datetime = Field(alias="from")
    to: datetime
    items: list[RankedFigure]


class SlaFigure(BaseModel):
    key: str | None = Field(description="the dimension value when split by one")
    policy: str | None
    metric: str = Field(description="first_response, next_response, resolution, step:<key>, ...")
    step: str | None
    achieved: int
    breached: int
    n: int
    compliance_percent: float | None


class SlaTotal(BaseModel):
    achieved: int
    breached: int
    n: int
    compliance_percent: float | None


class SlaRead(BaseModel):
    by: str | None
    tz: str
    from_: datetime = Field(alias="from")
    to: datetime
    items: list[SlaFigure]
    total: SlaTotal


class TargetAtRisk(BaseModel):
    ticket_id: uuid.UUID
    number: int | None
    metric: str
    policy: str | None
    target_minutes: int | None
    due_at: datetime | None
    minutes_left: float | None = Field(description="negative once overdue")
    colour: str
    status: str | None
    priority: str | None
    channel: str | None
    team_id: uuid.UUID | None
    assignee_id: str | None


class AtRiskRead(BaseModel):
    as_of: datetime
    at_risk: list[TargetAtRisk] = Field(description="running targets not yet due: warned, or in their last quarter; "
                                                    "soonest due first")
    overdue: list[TargetAtRisk] = Field(description="running targets past due or breached; longest overdue first")
