"""KPI rules: what "today" means in a zone (pure), and the KPI document."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
import functools
import zoneinfo
from zoneinfo import ZoneInfo

from helpdesk_common.problems import Problem

from ..access import Selection, ticket_filter
from ..metrics.rules import BACKLOG_BUCKETS, percentile
from ..reports.repository import ticket_scope_sql
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


def _floor_hour(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def age_thresholds(now: datetime) -> list[datetime]:
    """The creation instants that bound the backlog's age buckets (metrics.rules.BACKLOG_BUCKETS),
    youngest first: a ticket created after ``now - 1 h`` is in ``lt_1h``."""
    return [now - upper for _, upper in BACKLOG_BUCKETS if upper is not None]


def age_edges(thresholds: list[datetime]) -> list[datetime]:
    """The first whole UTC hour after each age threshold: open_rollups' hours from there on are
    wholly younger than the threshold; the hour before it straddles it and is counted exactly."""
    return [_floor_hour(t) + timedelta(hours=1) for t in thresholds]


def backlog(row: dict[str, Any]) -> dict[str, int]:
    """Open tickets per age bucket, every bucket listed (the last is what the others leave)."""
    names = [name for name, _ in BACKLOG_BUCKETS]
    counts = {name: int(row[f"b{i}"]) for i, name in enumerate(names[:-1])}
    counts[names[-1]] = int(row["n"]) - sum(counts.values())
    return counts


def _exact(values: list[float] | None, q: float) -> float | None:
    found = percentile(values or [], q)
    return None if found is None else round(found, 2)


def _percent(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(100 * part / whole, 2)


def board_figures(row: dict[str, Any]) -> dict[str, Any]:
    """The KPI document's figures from the read model's one-row answer (pure)."""
    total = int(row["tickets_total"])
    return {
        "tickets_created_today": int(row["created"]),
        "open_tickets": int(row["n"]),
        "tickets_total": total,
        "tickets_linked_to_customer": int(row["linked"]),
        "tickets_with_sla": int(row["with_sla"]),
        "unassigned_tickets": int(row["unassigned"]),
        "overdue_tickets": int(row["overdue"]),
        "at_risk_tickets": int(row["at_risk"]),
        "first_reply_minutes_p50_today": _exact(row["first_replies"], 50),
        "resolution_minutes_p50_today": _exact(row["resolutions"], 50),
        "csat_percent_today": _percent(int(row["csat_satisfied"]), int(row["csat_n"])),
        "sla_compliance_percent_today": _percent(int(row["sla_achieved"]), int(row["sla_n"])),
        "backlog": backlog(row),
    }


def rollup_surveys(row: dict[str, Any]) -> dict[str, Any]:
    """The ``csat`` and ``nps`` objects from today's rollup sums (passives are the rest of the answers)."""
    nps_n, promoters, detractors = int(row["nps_n"]), int(row["nps_promoters"]), int(row["nps_detractors"])
    return {
        "csat": csat_figures(responses=int(row["csat_n"]), rating_sum=int(row["csat_rating_sum"]),
                             satisfied=int(row["csat_satisfied"])),
        "nps": nps_figures(responses=nps_n, promoters=promoters, passives=nps_n - promoters - detractors,
                           detractors=detractors),
    }


async def kpis(conn: Any, *, now: datetime, tz_name: str, selection: Selection | None = None) -> dict[str, Any]:
    """The live board for a scope (default: everything).

    Figures come from the metric read model. While it is still empty (before the fold ran or a
    rebuild filled it), an admin's original counters come from the older ticket_facts and
    survey_answers tables, as they always did, so the board never goes blank during an upgrade.
    """
    selection = selection or Selection("all", ("",))
    start, end = day_bounds(now, zone(tz_name))
    scope_sql, scope_args = ticket_scope_sql(ticket_filter(selection), "m", 11)
    thresholds = age_thresholds(now)
    row = await repository.board(
        conn, dim=selection.dim, values=list(selection.values or ()), hour_start=_floor_hour(start),
        hour_end=_floor_hour(end), day_start=start, day_end=end, now=now, age_thresholds=thresholds,
        age_edges=age_edges(thresholds), scope_sql=scope_sql, scope_args=scope_args)
    body = {**board_figures(row), **rollup_surveys(row)}
    as_of = row["as_of"]
    if as_of is None and selection.dim == "all":
        values = await repository.kpis(conn, day_start=start, day_end=end)
        # survey figures count the answers given on the same local day as tickets_created_today
        surveys = survey_figures(await repository.survey_counts(conn, start=start, end=end))
        body.update(values, **surveys)
        as_of = await repository.legacy_as_of(conn)
    return {**body, "as_of": as_of, "tz": tz_name}


def board_rows(body: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The board as (figure, value) rows for a download; nested figures as ``csat.average``."""
    rows: list[list[Any]] = []
    for key, value in body.items():
        if isinstance(value, dict):
            rows.extend([f"{key}.{inner}", item] for inner, item in value.items())
        else:
            rows.append([key, value])
    return ["figure", "value"], rows
