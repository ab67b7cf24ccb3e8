"""KPI rules: what "today" means in a zone (pure), and the KPI document."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal
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


def _ratio(numerator: int, denominator: int, places: str) -> Decimal:
    """Half-up rounding (not Python's half-even): 4.125 reads 4.13 as people compute it by hand."""
    return (Decimal(numerator) / Decimal(denominator)).quantize(Decimal(places), rounding=ROUND_HALF_UP)


def csat_figures(*, responses: int, rating_sum: int, satisfied: int) -> dict[str, Any]:
    """CSAT over a window; with no answer there is no average, and null says so where 0 would lie."""
    if responses == 0:
        return {"responses": 0, "average": None, "satisfied_share": None}
    return {
        "responses": responses,
        "average": float(_ratio(rating_sum, responses, "0.01")),
        "satisfied_share": float(_ratio(satisfied, responses, "0.0001")),
    }


def nps_figures(*, responses: int, promoters: int, passives: int, detractors: int) -> dict[str, Any]:
    """NPS = promoters% - detractors%, a whole number in -100..100 (null without answers)."""
    score = None if responses == 0 else int(_ratio(100 * (promoters - detractors), responses, "1"))
    return {"responses": responses, "promoters": promoters, "passives": passives, "detractors": detractors,
            "score": score}


def survey_figures(counts: dict[str, int]) -> dict[str, Any]:
    """The ``csat`` and ``nps`` parts of the KPI document from the repository's raw counts."""
    return {
        "csat": csat_figures(responses=counts["csat_responses"], rating_sum=counts["csat_rating_sum"],
                             satisfied=counts["csat_satisfied"]),
        "nps": nps_figures(responses=counts["nps_responses"], promoters=counts["nps_promoters"],
                           passives=counts["nps_passives"], detractors=counts["nps_detractors"]),
    }


async def kpis(conn: Any, *, now: datetime, tz_name: str) -> dict[str, Any]:
    start, end = day_bounds(now, zone(tz_name))
    values = await repository.kpis(conn, day_start=start, day_end=end)
    # survey figures count the answers given on the same local day as tickets_created_today
    surveys = survey_figures(await repository.survey_counts(conn, start=start, end=end))
    return {**values, **surveys, "as_of": now, "tz": tz_name}
