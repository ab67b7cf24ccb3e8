"""sla-svc's name for the shared business-time arithmetic, which lives in
:mod:`helpdesk_common.business_time` so ticket-svc counts business hours exactly as sla-svc
does. Kept so sla-svc's imports (and anything pinned to this path) keep working."""

from helpdesk_common.business_time import (  # noqa: F401  (re-exports)
    ALWAYS_OPEN,
    HORIZON_DAYS,
    BusinessCalendar,
    NoWorkingTime,
    UtcInterval,
    WallInterval,
    add_business_minutes,
    add_business_time,
    business_seconds_between,
    business_time_between,
    day_intervals,
    is_working_time,
    library_days,
    next_working_instant,
    to_utc,
    wall_intervals,
    wall_to_utc,
)
