from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from helpdesk_common.problems import Problem


def start_of_day(now: datetime, tz_name: str) -> datetime:
    """Midnight of ``now``'s date in ``tz_name`` (what a manager in that zone calls today)."""
    try:
        zone = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise Problem(422, "validation-error", "Unknown time zone", f"{tz_name!r} is not an IANA time zone.") from exc
    local = now.astimezone(zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)
