"""API shapes of SLA business calendars.

The calendar document itself (``CalendarIn`` and its validation) is shared from
:mod:`helpdesk_common.business_calendar`, so every service that projects a calendar validates
and reads it the same way; the due-time request and answer are sla-svc's own.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from helpdesk_common.business_calendar import (  # noqa: F401  (re-exports)
    CALENDAR_24X7,
    HHMM_PATTERN,
    MAX_EXTRA_DATES,
    MAX_INTERVALS_PER_DAY,
    MINUTES_PER_DAY,
    WEEKDAYS,
    CalendarIn,
    IntervalOrderError,
    Weekday,
    check_holiday_region,
    check_timezone,
    cross_field,
    format_hhmm,
    normalize_day,
    parse_hhmm,
)
from helpdesk_common.validation import AwareUtcDatetime, StrictModel

MAX_DUE_MINUTES = 10_000_000  # ~19 years of 24x7; bounds the work of one due-date request


class DueIn(StrictModel):
    """Body of ``POST /v1/sla/calendars/{id}/due``."""

    #: in UTC once validated: a start that overflows there (9999-12-31T23:00-14:00) is a 422
    start: AwareUtcDatetime
    minutes: int = Field(ge=0, le=MAX_DUE_MINUTES)


class DueOut(BaseModel):
    """Answer of ``POST /v1/sla/calendars/{id}/due``: always in UTC."""

    due_at: datetime
