"""KPI rules: what "today" means in a zone (pure), and the KPI document."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any
import functools
import zoneinfo
from zoneinfo import ZoneInfo

from helpdesk_common.problems import Problem

from . import repository


_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})  # files in the tz database, not places


@functools.cache
def zone_names() -> list[str]:
    """The zones ``zone`` takes, sorted: the API document lists them (the tz database is scanned once)."""
    return sorted((zoneinfo.available_timezones() - _NOT_ZONES) | {"UTC"})


def zone(name: str) -> tzinfo:
    """An IANA zone by name; anything else (paths, 'localtime', typos) is a 422 problem."""
    if name == "UTC":
        return UTC  # needs no tz database
    if name in zone_names():
        try:
            return ZoneInfo(name)
        except (ValueError, KeyError, OSError):  # not found (ZoneInfoNotFoundError), a path, a non-TZif file
            pass
    raise Problem(
        422, "validation-error", "Unknown time zone", f"{name!r} is not an IANA time zone.",
        errors=[{"field": "query.tz", "message": "Unknown IANA time zone", "code": "unknown_time_zone"}],
    )


def day_bounds(now: datetime, tz: tzinfo) -> tuple[datetime, datetime]:
    """[start, end) of ``now``'s local date in ``tz``, in UTC; 23 or 25 hours long across DST."""
    today = now.astimezone(tz).date()
    start = datetime.combine(today, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(today + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return start, end


async def kpis(conn: Any, *, now: datetime, tz_name: str) -> dict[str, Any]:
    start, end = day_bounds(now, zone(tz_name))
    values = await repository.kpis(conn, day_start=start, day_end=end)
    return {**values, "as_of": now, "tz": tz_name}
