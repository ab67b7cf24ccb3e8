"""The only place with SQL for the gateway's erasure."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


async def requesters(conn: AsyncConnection, customer_id: uuid.UUID) -> list[Any]:
    """(ticket id, requester) of the stream rows that name the customer."""
    return (await conn.execute(text(
        "SELECT ticket_id, payload->'requester' AS requester FROM stream_events "
        "WHERE payload->>'customer_id' = :c"), {"c": str(customer_id)})).all()


async def forget(conn: AsyncConnection, *, ticket_ids: list[uuid.UUID], found: list[str]) -> int:
    """Delete the stream rows of the person's tickets and any row naming them (a client that
    resumes past them gets the next event: the stream is a notification, not a record)."""
    result = await conn.execute(text(
        "DELETE FROM stream_events WHERE ticket_id = ANY(CAST(:t AS uuid[])) OR EXISTS ("
        "SELECT 1 FROM unnest(CAST(:n AS text[])) AS x(term) "
        "WHERE position(lower(x.term) IN lower(payload::text)) > 0)"), {"t": ticket_ids, "n": found})
    return result.rowcount
