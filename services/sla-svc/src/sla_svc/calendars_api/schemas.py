"""Read shapes of the calendars API (the input shape is ``calendars.schemas.CalendarIn``)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from typing import Annotated

from pydantic import BaseModel, Field


class CalendarRead(BaseModel):
    id: uuid.UUID
    name: str
    timezone: str
    #: day -> [["09:00", "12:00"], ...]: lists of two strings (a tuple's prefixItems were turned into
    #: Draft 4 array items by schemathesis 4.32's response check, which then refused its own schema)
    weekly_hours: dict[str, list[Annotated[list[str], Field(min_length=2, max_length=2)]]]
    holiday_country: str | None
    holiday_subdivision: str | None
    extra_holidays: list[date]
    extra_working_days: list[date]
    makeup_day_hours_from: str
    version: int
    created_at: datetime
    updated_at: datetime


class CalendarList(BaseModel):
    items: list[CalendarRead]
    next_cursor: str | None


class TeamCalendarIn(BaseModel):
    model_config = {"extra": "forbid"}

    calendar_id: uuid.UUID


class TeamCalendarRead(BaseModel):
    team_id: uuid.UUID
    calendar_id: uuid.UUID
    updated_at: datetime
