"""How a target's time passes: calendar time (every second counts) or business time (only
a calendar's working seconds count). One small interface so the timer plan does not care."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..calendars.business_time import BusinessCalendar, add_business_time, business_time_between


class CalendarClock:
    """24x7 wall time: plain ``timedelta`` arithmetic, no calendar lookup at all."""

    def add(self, start: datetime, seconds: float) -> datetime:
        return _utc(start) + timedelta(seconds=max(0.0, seconds))

    def between(self, start: datetime, end: datetime) -> float:
        return (_utc(end) - _utc(start)).total_seconds()


@dataclass(frozen=True)
class BusinessClock:
    """Only the calendar's working time counts (raises ``NoWorkingTime`` when none is left)."""

    calendar: BusinessCalendar

    def add(self, start: datetime, seconds: float) -> datetime:
        return add_business_time(self.calendar, start, timedelta(seconds=max(0.0, seconds)))

    def between(self, start: datetime, end: datetime) -> float:
        return business_time_between(self.calendar, start, end).total_seconds()


Clock = CalendarClock | BusinessClock
CALENDAR_TIME = CalendarClock()


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("datetimes must carry a time zone")
    return value.astimezone(UTC)
