"""Pydantic shapes of the SLA read API (documentation; responses are rendered from rows)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

#: first_response, next_response, periodic_update, resolution, or step:<key> (a workflow step)
Metric = str
State = Literal["running", "paused", "fulfilled", "breached", "cancelled"]


class TimerRead(BaseModel):
    metric: Metric
    policy: str
    target_minutes: int
    started_at: datetime
    due_at: datetime | None
    status: State


class TimerList(BaseModel):
    items: list[TimerRead]


class MetricStatus(BaseModel):
    metric: Metric
    state: State
    policy: str
    policy_id: uuid.UUID | None
    target_minutes: int
    time: Literal["business", "calendar"]
    calendar_id: uuid.UUID | None
    cycle: int
    started_at: datetime
    #: None while paused (the due time depends on when it resumes)
    due_at: datetime | None
    #: target seconds left, in business seconds for business targets; negative once overdue
    remaining_seconds: float | None
    colour: Literal["green", "yellow", "red", "breached"] | None
    warnings_fired: int
    paused_at: datetime | None
    breached_at: datetime | None
    fulfilled_at: datetime | None
    cancelled_at: datetime | None


class TicketSlaRead(BaseModel):
    ticket_id: uuid.UUID
    metrics: list[MetricStatus]


class MetricCompliance(BaseModel):
    fulfilled_on_time: int
    breached: int
    compliance_pct: float | None


class ComplianceRead(BaseModel):
    from_: datetime = Field(alias="from")
    to: datetime
    metrics: dict[Metric, MetricCompliance]
