"""Business calendars for the read model: sla-svc's ``sla.team_calendar_changed`` projected into
``business_calendars``, read at fold time (as ticket-svc's ``sla/calendars.py`` does).

A ticket's business minutes are counted in its team's calendar, else the default calendar, else
none (24x7: business minutes equal calendar minutes). The calendar is read when the ticket is
folded: a calendar change applies to tickets folded afterwards; figures already folded (resolved
tickets) keep the calendar they were folded with until another fact of theirs arrives or the
read model is rebuilt. Built calendars are cached per process by the digest of their definition
(read with the fold's context, one index probe), so a change is seen at once, and a process that
reads several databases (tests, a rebuild's fresh schema) never takes one's calendar for
another's of the same version.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from helpdesk_common.business_calendar import CalendarIn
from helpdesk_common.business_time import BusinessCalendar

from . import repository

DEFAULT_KEY = "default"
_CACHE_LIMIT = 1000
_BUILT: dict[str, BusinessCalendar] = {}


def team_key(team_id: uuid.UUID | str | None) -> str:
    return DEFAULT_KEY if team_id is None else str(team_id)


def build(definition: Any) -> BusinessCalendar:
    """The arithmetic form of a projected calendar document (validated as sla-svc validates it)."""
    if isinstance(definition, (str, bytes)):
        definition = orjson.loads(definition)
    return BusinessCalendar.from_schema(CalendarIn.model_validate(definition))


def keys_for(team_id: str | None) -> list[str]:
    """The ``business_calendars`` keys that may apply to a ticket of ``team_id``, in preference order."""
    return [DEFAULT_KEY] if team_id is None else [team_key(team_id), DEFAULT_KEY]


def pick(team_id: str | None, rows: list[Any]) -> Any | None:
    """The row that applies among rows *with* a calendar: the team's own, else the default (pure)."""
    by_key = {r["team_key"]: r for r in rows}
    for key in keys_for(team_id):
        if key in by_key:
            return by_key[key]
    return None


async def calendar_for(conn: Any, team_id: str | None,
                       versions: list[Any]) -> tuple[uuid.UUID | None, BusinessCalendar | None]:
    """(calendar id, calendar) for a ticket of ``team_id`` given the ``versions`` rows (key and
    digest) read with the fold's context (``repository.fold_contexts``); (None, None) when none
    applies. The definition is read only when its digest is not cached yet."""
    chosen = pick(team_id, versions)
    if chosen is None:
        return None, None
    cal = _BUILT.get(chosen["digest"])
    if cal is None:
        row = await repository.calendar_definition(conn, chosen["team_key"])
        if row is None or row["calendar"] is None:
            return None, None
        cal = build(row["calendar"])
        if len(_BUILT) >= _CACHE_LIMIT:
            _BUILT.clear()
        _BUILT[row["digest"]] = cal
    return chosen["calendar_id"], cal
