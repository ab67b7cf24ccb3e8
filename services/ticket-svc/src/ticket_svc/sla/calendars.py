"""Business time in ticket-svc: the team's calendar as sla-svc holds it, projected from
``sla.team_calendar_changed`` (migration 0015), so time-based automations count business hours
exactly as sla-svc's timers do (the same ``helpdesk_common.business_time`` over the same
calendar document) without a call to sla-svc.

Which calendar: the team's own, else the default, else none (the caller then refuses to count
business hours rather than silently counting calendar hours). Built calendars are cached per
process by (key, version): building is cheap but each one memoises its holiday and day tables.
Every use still asks the database for the current versions (one primary-key probe of at most
two rows), so a newer version consumed by another replica is seen at once, with no cross-process
invalidation to get wrong.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import orjson

from helpdesk_common.business_calendar import CalendarIn
from helpdesk_common.business_time import BusinessCalendar, add_business_time

from ..automation.schedule import BusinessTimeFn
from . import repository

DEFAULT_KEY = "default"
_CACHE_LIMIT = 1000
_BUILT: dict[tuple[str, int], BusinessCalendar] = {}


def team_key(team_id: uuid.UUID | None) -> str:
    return DEFAULT_KEY if team_id is None else str(team_id)


def pick_key(team_id: uuid.UUID | None, versions: dict[str, tuple[int, bool]]) -> tuple[str, int] | None:
    """(key, version) of the calendar that applies: the team's own, else the default, else None."""
    for key in (team_key(team_id), DEFAULT_KEY):
        found = versions.get(key)
        if found is not None and found[1]:
            return key, found[0]
    return None


def build(definition: Any) -> BusinessCalendar:
    """The arithmetic form of a projected calendar document (validated as sla-svc validates it)."""
    if isinstance(definition, (str, bytes)):
        definition = orjson.loads(definition)
    return BusinessCalendar.from_schema(CalendarIn.model_validate(definition))


def bind(cal: BusinessCalendar) -> BusinessTimeFn:
    def business_time_fn(start: datetime, amount: timedelta) -> datetime:
        return add_business_time(cal, start, amount)

    return business_time_fn


async def calendar_for(conn: Any, team_id: uuid.UUID | None) -> BusinessCalendar | None:
    keys = [team_key(team_id)] if team_id is None else [team_key(team_id), DEFAULT_KEY]
    rows = await repository.team_calendar_versions(conn, keys)
    chosen = pick_key(team_id, {r["team_key"]: (r["version"], r["has_calendar"]) for r in rows})
    if chosen is None:
        return None
    cal = _BUILT.get(chosen)
    if cal is None:
        row = await repository.team_calendar(conn, chosen[0])
        if row is None or row["calendar"] is None:  # changed between the two reads: ask again next time
            return None
        cal = build(row["calendar"])
        if len(_BUILT) >= _CACHE_LIMIT:
            _BUILT.clear()
        _BUILT[(chosen[0], row["version"])] = cal
    return cal


async def business_time_fn(conn: Any, team_id: uuid.UUID | None) -> BusinessTimeFn | None:
    """``(start, amount) -> instant`` in the business time of the team's calendar (else the
    default's), or None when sla-svc has published neither."""
    cal = await calendar_for(conn, team_id)
    return None if cal is None else bind(cal)


async def on_team_calendar_changed(conn: Any, data: Any) -> None:
    """Keep the newest version per team; a newer one drops the built calendars of that key and
    tells the automation scheduler, whose business-hour due times may have moved."""
    key = team_key(data.team_id)
    kept = await repository.upsert_team_calendar(conn, team_key=key, team_id=data.team_id,
                                                 calendar_id=data.calendar_id, calendar=data.calendar,
                                                 version=data.version)
    if kept:
        for cached in [k for k in _BUILT if k[0] == key]:
            _BUILT.pop(cached, None)
        await repository.notify_automations_changed(conn)
