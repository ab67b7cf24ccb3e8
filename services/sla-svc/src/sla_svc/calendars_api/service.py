"""Calendars as stored rows <-> the pure ``BusinessCalendar``; never commits.

Built calendars are cached per process by (id, version): building one is cheap, but its
memoised holiday and day tables make every later computation cheaper, and the version in
the key means an edited calendar is never served stale.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from helpdesk_common.concurrency import conflict
from helpdesk_common.problems import Problem

from ..calendars.business_time import BusinessCalendar, NoWorkingTime, add_business_minutes
from ..calendars.schemas import CalendarIn
from ..timers.clock import CALENDAR_TIME, BusinessClock, Clock
from . import repository

_CACHE: dict[tuple[uuid.UUID, int], BusinessCalendar] = {}
_CACHE_LIMIT = 1000


def as_read(row: Any) -> dict[str, Any]:
    return {"id": row.id, **row.definition, "version": row.version, "created_at": row.created_at,
            "updated_at": row.updated_at}


def _definition(body: CalendarIn) -> dict[str, Any]:
    return body.model_dump(mode="json")


async def create(conn: AsyncConnection, *, body: CalendarIn) -> dict[str, Any]:
    row = await repository.insert(conn, calendar_id=uuid.uuid4(), name=body.name, timezone=body.timezone,
                                  definition=_definition(body))
    return as_read(row)


async def replace(conn: AsyncConnection, *, calendar_id: uuid.UUID, body: CalendarIn,
                  expected_versions: list[int] | None) -> Any:
    """The updated row; raises 404 / 412 (the shared If-Match rule). The caller bumps the
    recalculation generation."""
    row = await repository.update(conn, calendar_id=calendar_id, name=body.name, timezone=body.timezone,
                                  definition=_definition(body), expected_versions=expected_versions)
    if row is None:
        current = await repository.get(conn, calendar_id)
        if current is None:
            raise not_found()
        raise conflict(current.version, "calendar")
    return row


def not_found() -> Problem:
    return Problem(404, "not-found", "Not found", "No such calendar.")


def calendar_of(row: Any) -> BusinessCalendar:
    key = (row.id, row.version)
    cal = _CACHE.get(key)
    if cal is None:
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        cal = _CACHE[key] = BusinessCalendar.from_schema(CalendarIn.model_validate(row.definition))
    return cal


async def clock_for(conn: AsyncConnection, calendar_id: uuid.UUID | None) -> Clock:
    """The clock of a target: calendar time without a calendar, else the calendar's business
    time. A calendar deleted from under a policy falls back to calendar time (never a crash
    inside an event handler, which would dead-letter the ticket's events)."""
    if calendar_id is None:
        return CALENDAR_TIME
    row = await repository.get(conn, calendar_id)
    return CALENDAR_TIME if row is None else BusinessClock(calendar_of(row))


async def team_calendar_id(conn: AsyncConnection, team_id: uuid.UUID | None) -> uuid.UUID | None:
    if team_id is None:
        return None
    row = await repository.get_team_calendar(conn, team_id)
    return row.calendar_id if row is not None else None


async def set_team_calendar(conn: AsyncConnection, *, team_id: uuid.UUID, calendar_id: uuid.UUID) -> dict[str, Any]:
    """Which calendar a team's business-time targets count in; 422 for an unknown calendar.
    The caller bumps the recalculation generation, so live timers of the team re-target."""
    if not await repository.exists(conn, calendar_id):
        raise Problem(422, "validation-error", "Validation failed", "One or more fields are invalid.",
                      errors=[{"field": "body.calendar_id", "message": "no such calendar", "code": "not_found"}])
    row = await repository.set_team_calendar(conn, team_id=team_id, calendar_id=calendar_id)
    return {"team_id": row.team_id, "calendar_id": row.calendar_id, "updated_at": row.updated_at}


def due(row: Any, *, start: datetime, minutes: int) -> datetime:
    try:
        return add_business_minutes(calendar_of(row), start, minutes)
    except NoWorkingTime as exc:
        raise Problem(422, "no-working-time", "No working time", str(exc)) from exc
    except OverflowError as exc:  # the due time falls after 9999-12-31, beyond any datetime
        raise Problem(422, "validation-error", "Validation failed", "The due time would fall after the year 9999.",
                      errors=[{"field": "body.minutes", "message": "the due time is out of range",
                               "code": "out_of_range"}]) from exc
