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
    #: "policy" (the ticket's policy names the metric) or "step" (a step's own target from its
    #: process definition)
    target_from: Literal["policy", "step"] = "policy"
    #: when it stopped counting: met (fulfilled_at) or cancelled
    completed_at: datetime | None = None
    #: wall-clock seconds from started_at to completed_at (or now), pauses included
    elapsed_seconds: float
    #: the same span in business seconds of the timer's calendar; None for calendar-time targets
    elapsed_business_seconds: float | None = None
    #: seconds counted against the target (business seconds for business targets, pauses excluded)
    counted_seconds: float | None = None
    #: achieved (met by the due time), breached (due time passed first), None while open or cancelled
    outcome: Literal["achieved", "breached"] | None = None


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
