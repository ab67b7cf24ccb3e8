"""Upserts are order-independent: each event fills only its own columns."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from .models import ticket_facts

OPEN_EXCLUDED = ("solved", "closed")


async def upsert_fact(conn: AsyncConnection, ticket_id: uuid.UUID, **values: Any) -> None:
    stmt = pg_insert(ticket_facts).values(ticket_id=ticket_id, **values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[ticket_facts.c.ticket_id],
        set_={**{k: stmt.excluded[k] for k in values}, "updated_at": text("clock_timestamp()")},
    )
    await conn.execute(stmt)


async def kpis(conn: AsyncConnection, *, day_start: datetime) -> dict[str, int]:
    f = ticket_facts.c
    known = f.created_at.is_not(None)
    row = (
        await conn.execute(
            select(
                func.count().filter(known).label("tickets_total"),
                func.count().filter(known, f.created_at >= day_start).label("tickets_created_today"),
                func.count().filter(known, f.status.not_in(OPEN_EXCLUDED)).label("open_tickets"),
                func.count().filter(known, f.customer_id.is_not(None)).label("tickets_linked_to_customer"),
                func.count().filter(known, f.first_response_due_at.is_not(None)).label("tickets_with_sla"),
            )
        )
    ).one()
    return dict(row._mapping)
