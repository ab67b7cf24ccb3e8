"""``sla.team_calendar_changed``: each team's business calendar (and the default) for the
services that count business hours themselves (ticket-svc's time-based automations), through
the outbox in the transaction of the change; never commits.

sla-svc has no stored default calendar: a business target of a ticket whose team has no
calendar counts in calendar time, which is the 24x7 calendar. The default event says exactly
that (``calendar_id`` null, the 24x7 document, version 1, it never changes), published once
business calendars come into use (the first calendar created); before that no calendar exists,
and a consumer asked for business hours has none to count in.

Versions come from ``team_calendar_versions`` (migration 0006): bumped on every change, read
unchanged by the start-up republish, so a consumer that keeps the highest version per key
ends with the state of the last committed change whatever order events arrive in.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from helpdesk_common import events
from helpdesk_common.business_calendar import CALENDAR_24X7
from helpdesk_common.outbox import enqueue

from ..db import outbox
from . import repository

SOURCE = "sla-svc"
DEFAULT_KEY = "default"
DEFAULT_VERSION = 1


def team_calendar_event(*, team_id: uuid.UUID | None, calendar_id: uuid.UUID | None,
                        calendar: dict[str, Any] | None, version: int,
                        at: datetime | None = None) -> events.SlaTeamCalendarChanged:
    return events.SlaTeamCalendarChanged(
        source=SOURCE, subject=DEFAULT_KEY if team_id is None else str(team_id),
        data=events.SlaTeamCalendarData(team_id=team_id, calendar_id=calendar_id, calendar=calendar, version=version,
                                        at=at or datetime.now(UTC)))


def default_event() -> events.SlaTeamCalendarChanged:
    return team_calendar_event(team_id=None, calendar_id=None, calendar=CALENDAR_24X7.model_dump(mode="json"),
                               version=DEFAULT_VERSION)


async def publish_team(conn: AsyncConnection, team_id: uuid.UUID) -> None:
    """The team's calendar as it is now (set, edited or cleared), with a new version. The
    version is bumped (locking the team's counter) before the state is read, so a concurrent
    change of the same team either waits for ours or is already visible to our read."""
    version = await repository.bump_team_version(conn, str(team_id))
    state = await repository.team_calendar_state(conn, team_id)
    await enqueue(conn, outbox, team_calendar_event(
        team_id=team_id, calendar_id=state.calendar_id if state else None,
        calendar=state.definition if state else None, version=version))


async def publish_users_of(conn: AsyncConnection, calendar_id: uuid.UUID) -> None:
    """A calendar was edited: every team counting in it gets its new definition."""
    for team_id in await repository.teams_using(conn, calendar_id):
        await publish_team(conn, team_id)


async def publish_default_once(conn: AsyncConnection) -> None:
    """Business calendars come into use: the default (24x7) is published the first time only."""
    if await repository.claim_default_version(conn):
        await enqueue(conn, outbox, default_event())


async def republish_all(conn: AsyncConnection) -> int:
    """Every key's current state with its current version (start-up): a consumer that missed
    or lost events (a new replica's empty projection, a rebuilt one) catches up; one that has
    them ignores these as not newer. The number of events written."""
    evts = []
    for row in await repository.published_calendars(conn):
        if row.team_key == DEFAULT_KEY:
            evts.append(default_event())
            continue
        evts.append(team_calendar_event(team_id=uuid.UUID(row.team_key), calendar_id=row.calendar_id,
                                        calendar=row.definition, version=row.version))
    if evts:
        await enqueue(conn, outbox, *evts)
    return len(evts)
