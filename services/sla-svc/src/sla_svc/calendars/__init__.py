"""SLA business calendars: validated API shapes and pure business-time arithmetic.

No database here: models, repository and endpoints build on these pure pieces.
See docs/sla-calendars.md for the rules.
"""

from sla_svc.calendars.business_time import (
    ALWAYS_OPEN,
    HORIZON_DAYS,
    BusinessCalendar,
    NoWorkingTime,
    add_business_minutes,
    add_business_time,
    business_seconds_between,
    business_time_between,
    day_intervals,
    is_working_time,
    library_days,
    next_working_instant,
    wall_intervals,
)
from sla_svc.calendars.schemas import CALENDAR_24X7, CalendarIn, DueIn, DueOut

__all__ = [
    "ALWAYS_OPEN",
    "CALENDAR_24X7",
    "HORIZON_DAYS",
    "BusinessCalendar",
    "CalendarIn",
    "DueIn",
    "DueOut",
    "NoWorkingTime",
    "add_business_minutes",
    "add_business_time",
    "business_seconds_between",
    "business_time_between",
    "day_intervals",
    "is_working_time",
    "library_days",
    "next_working_instant",
    "wall_intervals",
]
