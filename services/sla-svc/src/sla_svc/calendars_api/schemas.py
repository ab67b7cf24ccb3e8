"""Read shapes of the calendars API (the input shape is ``calendars.schemas.CalendarIn``)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel


class CalendarRead(BaseModel):
    id: uuid.UUID
    name: str
    timezone: str
    weekly_hours: dict[str, list[tuple[str, str]]]
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
