"""The only place with SQL for the ticket projection."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from helpdesk_common.db import RecordRow, driver_of

from ..timers import repository as timers

#: every ticket.created runs it: on the driver connection (``helpdesk_common.db.driver_of``)
_UPSERT_CREATED = (
    "INSERT INTO sla_tickets (ticket_id, status, priority, type, channel, tags, customer_tier, custom_fields, team_id, "
    "assignee_id, created_at, customer_id) VALUES ($1, $2, $3, $4, $5, $6, $7, CAST($8 AS jsonb), $9, $10, $11, $12) "
    f"ON CONFLICT (ticket_id) DO NOTHING RETURNING *, ({timers.GENERATION}) AS sla_generation"
)
_COLUMNS = ("status", "priority", "type", "channel", "tags", "customer_tier", "custom_fields", "team_id", "assignee_id")


async def upsert_created(conn: AsyncConnection, *, ticket_id: uuid.UUID, status: str, priority: str,
                         type: str | None, channel: str | None, tags: list[str], customer_tier: str | None,
                         custom_fields: dict[str, Any], team_id: uuid.UUID | None, assignee_id: str | None,
                         created_at: datetime, customer_id: uuid.UUID | None = None) -> tuple[Any, int]:
    """First sight of a ticket; a replayed ticket.created keeps what later events changed.
    Returns the ticket's row either way and the recalculation generation, read after the
    projection and before any policy (the new row and the generation from the INSERT itself: one
    round trip for the usual case; the row carries the generation as ``sla_generation`` too)."""
    row = await (await driver_of(conn)).fetchrow(
        _UPSERT_CREATED, ticket_id, status, priority, type, channel, tags, customer_tier,
        orjson.dumps(custom_fields).decode(), team_id, assignee_id, created_at, customer_id,
    )
    if row is not None:
        return RecordRow(row), row["sla_generation"]
    return await get(conn, ticket_id), await timers.current_generation(conn)


async def get(conn: AsyncConnection, ticket_id: uuid.UUID) -> Any:
    return (await conn.execute(text("SELECT * FROM sla_tickets WHERE ticket_id = :id"), {"id": ticket_id})).first()


async def update(conn: AsyncConnection, ticket_id: uuid.UUID, values: dict[str, Any]) -> None:
    """Set the given projection columns (unknown names are ignored, never interpolated)."""
    values = {k: v for k, v in values.items() if k in _COLUMNS}
    if not values:
        return
    sets = ", ".join(f"{k} = CAST(:{k} AS jsonb)" if k == "custom_fields" else f"{k} = :{k}" for k in values)
    params = {k: orjson.dumps(v).decode() if k == "custom_fields" else v for k, v in values.items()}
    await conn.execute(text(f"UPDATE sla_tickets SET {sets}, updated_at = now() WHERE ticket_id = :id"),
                       {**params, "id": ticket_id})
