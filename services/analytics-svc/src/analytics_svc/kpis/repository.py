"""The only place with SQL for the read model. Upserts are order-independent: each event
fills only its own columns, so any arrival order folds to the same row."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import case, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from .models import ticket_facts

CLOSED_STATUSES = ("solved", "closed")
_NOW = text("clock_timestamp()")


async def upsert_created(
    conn: AsyncConnection, *, ticket_id: uuid.UUID, created_at: datetime, priority: str, status: str,
    channel: str | None,
) -> None:
    """The ticket.created columns; ``ingested_at`` is the wall clock of the first fold (kept if
    the creation is ever folded again, e.g. a re-published event with a new id)."""
    stmt = pg_insert(ticket_facts).values(
        ticket_id=ticket_id, created_at=created_at, priority=priority, status=status, channel=channel,
        ingested_at=_NOW,
    )
    x = stmt.excluded
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[ticket_facts.c.ticket_id],
            set_={
                "created_at": x.created_at, "priority": x.priority, "channel": x.channel,
                # a status folded from ticket.status_changed (versioned) outranks the creation's
                "status": case((ticket_facts.c.status_version.is_(None), x.status), else_=ticket_facts.c.status),
                "ingested_at": func.coalesce(ticket_facts.c.ingested_at, x.ingested_at),
                "updated_at": _NOW,
            },
        )
    )


async def upsert_partial(conn: AsyncConnection, *, ticket_id: uuid.UUID, **values: object) -> None:
    """Columns from a later event (link, SLA); creates a partial row if the ticket is not known yet."""
    stmt = pg_insert(ticket_facts).values(ticket_id=ticket_id, ingested_at=None, **values)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[ticket_facts.c.ticket_id],
            set_={**{k: stmt.excluded[k] for k in values}, "updated_at": _NOW},
        )
    )


async def upsert_status(conn: AsyncConnection, *, ticket_id: uuid.UUID, status: str, version: int) -> None:
    """Apply a status only if it comes from a newer ticket version than the one folded so far."""
    stmt = pg_insert(ticket_facts).values(ticket_id=ticket_id, status=status, status_version=version, ingested_at=None)
    x = stmt.excluded
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[ticket_facts.c.ticket_id],
            set_={"status": x.status, "status_version": x.status_version, "updated_at": _NOW},
            where=func.coalesce(ticket_facts.c.status_version, -1) < x.status_version,
        )
    )


async def kpis(conn: AsyncConnection, *, day_start: datetime, day_end: datetime) -> dict[str, int]:
    """All headline numbers in one scan with FILTER clauses."""
    f = ticket_facts.c
    known = f.created_at.is_not(None)
    row = (
        await conn.execute(
            select(
                func.count().filter(known, f.created_at >= day_start, f.created_at < day_end).label("tickets_created_today"),
                func.count().filter(known, f.status.not_in(CLOSED_STATUSES)).label("open_tickets"),
                func.count().filter(known).label("tickets_total"),
                func.count().filter(known, f.customer_id.is_not(None)).label("tickets_linked_to_customer"),
                func.count().filter(known, f.first_response_due_at.is_not(None)).label("tickets_with_sla"),
            )
        )
    ).one()
    return dict(row._mapping)
