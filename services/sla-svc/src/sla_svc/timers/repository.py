"""The only place with SQL for timers."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from .models import sla_timers
from .policies import Timer


async def insert_timer(conn: AsyncConnection, *, ticket_id: uuid.UUID, timer: Timer) -> bool:
    """True if the timer is new (a second ticket.created for the ticket finds it already there)."""
    inserted = await conn.scalar(
        pg_insert(sla_timers)
        .values(ticket_id=ticket_id, metric=timer.metric, policy=timer.policy, target_minutes=timer.target_minutes,
                started_at=timer.started_at, due_at=timer.due_at)
        .on_conflict_do_nothing(index_elements=[sla_timers.c.ticket_id, sla_timers.c.metric])
        .returning(sla_timers.c.ticket_id)
    )
    return inserted is not None


async def timers_of(conn: AsyncConnection, ticket_id: uuid.UUID) -> list[Row]:
    t = sla_timers.c
    stmt = select(t.metric, t.policy, t.target_minutes, t.started_at, t.due_at, t.status)
    return list((await conn.execute(stmt.where(t.ticket_id == ticket_id).order_by(t.metric))).all())
