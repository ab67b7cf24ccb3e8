"""Calendars shared by the table tests and the property tests."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sla_svc.calendars import BusinessCalendar, CalendarIn

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
WORKWEEK = ("mon", "tue", "wed", "thu", "fri")
ALL_DAYS = (*WORKWEEK, "sat", "sun")


def calendar(hours: dict, *, timezone: str = "Asia/Shanghai", name: str = "test", **extra) -> BusinessCalendar:
    """A BusinessCalendar built through the API schema, so every test also exercises validation."""
    return BusinessCalendar.from_schema(
        CalendarIn(name=name, timezone=timezone, weekly_hours=hours, **extra))


def every(days: tuple[str, ...], *intervals: tuple[str, str]) -> dict:
    return {day: [list(i) for i in intervals] for day in days}


PLAIN = calendar(every(WORKWEEK, ("09:00", "18:00")), name="plain")
SPLIT = calendar(every(WORKWEEK, ("09:00", "12:00"), ("13:00", "18:00")), name="split")
CN = calendar(every(WORKWEEK, ("09:00", "12:00"), ("13:00", "18:00")), holiday_country="CN", name="cn")
US_NY = calendar(every(WORKWEEK, ("09:00", "18:00")), timezone="America/New_York",
                 holiday_country="US", holiday_subdivision="NY", name="us-ny")
NY_EARLY = calendar(every(ALL_DAYS, ("01:00", "04:00")), timezone="America/New_York", name="ny-early")
NY_NIGHT = calendar(every(ALL_DAYS, ("00:00", "06:00"), ("22:00", "24:00")), timezone="America/New_York",
                    name="ny-night")
NY_GAP = calendar(every(ALL_DAYS, ("02:30", "05:00")), timezone="America/New_York", name="ny-gap")
NY_24X7 = calendar(every(ALL_DAYS, ("00:00", "24:00")), timezone="America/New_York", name="ny-24x7")
EMPTY = calendar({}, name="empty")
