"""Surveys as the API takes and shows them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from helpdesk_common.events import SURVEY_COMMENT_MAX_CHARS
from helpdesk_common.pagination import DEFAULT_LIMIT, MAX_LIMIT
from helpdesk_common.validation import StrictModel

from ..fields import NO_NUL
from .rules import CSAT_DELAY_MAX_MINUTES, NPS_INTERVAL_MAX_DAYS

Kind = Literal["csat", "nps"]
Status = Literal["scheduled", "sent", "answered", "expired", "skipped"]
Comment = Annotated[str, StringConstraints(max_length=SURVEY_COMMENT_MAX_CHARS)]


class SurveySettingsIn(StrictModel):
    """The whole settings (PUT replaces them)."""

    csat_enabled: bool
    csat_delay_minutes: Annotated[int, Field(ge=0, le=CSAT_DELAY_MAX_MINUTES,
                                             description="Minutes between the solve and the CSAT survey; 0 sends at once.")]
    nps_enabled: bool
    nps_interval_days: Annotated[int, Field(ge=1, le=NPS_INTERVAL_MAX_DAYS,
                                            description="At most one NPS survey per customer in this many days.")]


class SurveySettingsRead(BaseModel):
    csat_enabled: bool
    csat_delay_minutes: int
    nps_enabled: bool
    nps_interval_days: int
    version: int
    updated_at: datetime


class CsatAnswer(StrictModel):
    rating: Annotated[int, Field(ge=1, le=5, description="1 (very unsatisfied) to 5 (very satisfied)")]
    comment: Comment | None = None


class NpsAnswer(StrictModel):
    score: Annotated[int, Field(ge=0, le=10, description="How likely to recommend us, 0 to 10")]
    comment: Comment | None = None


class SurveyAnswerRead(BaseModel):
    """What the customer's answer recorded."""

    id: uuid.UUID
    kind: Kind
    status: Literal["answered"]
    rating: int | None
    score: int | None
    comment: str | None
    answered_at: datetime


class SurveyRead(BaseModel):
    id: uuid.UUID
    kind: Kind
    customer_id: uuid.UUID
    ticket_id: uuid.UUID | None
    team_id: uuid.UUID | None
    channel: str | None
    language: str | None
    status: Status
    send_at: datetime
    sent_at: datetime | None
    expires_at: datetime | None
    answered_at: datetime | None
    rating: int | None
    score: int | None
    comment: str | None
    created_at: datetime


class SurveyPage(BaseModel):
    items: list[SurveyRead]
    next_cursor: str | None


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT
    cursor: Annotated[str | None, Query(max_length=512, pattern=NO_NUL)] = None


class SurveyListQuery(PageQuery):
    kind: Kind | None = None
    status: Status | None = None
    ticket_id: uuid.UUID | None = None
