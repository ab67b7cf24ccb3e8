from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from .models import sla_timers


async def insert_timer(
    conn: AsyncConnection, *, ticket_id: uuid.UUID, metric: str, policy: str,
    target_minutes: int, started_at: datetime, due_at: datetime,
) -> bool:
    """True if the timer is new (a replayed ticket.created finds it already there)."""
    inserted = await conn.scalar(
        pg_insert(sla_timers)
        .values(ticket_id=ticket_id, metric=metric, policy=policy, target_minutes=target_minutes,
                started_at=started_at, due_at=due_at)
        .on_conflict_do_nothing()
        .returning(sla_timers.c.ticket_id)
    )
    return inserted is not None


async def timers_of(conn: AsyncConnection, ticket_id: uuid.UUID) -> list[Row]:
    return list(
        (await conn.execute(select(sla_timers).where(sla_timers.c.ticket_id == ticket_id).order_by(sla_timers.c.metric))).all()
    )
