"""The only place with SQL for the ticket projection."""

from __future__ import annotations

import functools
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


_INSERT_PROJECTION = (
    "INSERT INTO sla_tickets (ticket_id, status, priority, type, channel, tags, customer_tier, custom_fields, team_id, "
    "assignee_id, created_at, customer_id) VALUES ($1, $2, $3, $4, $5, $6, $7, CAST($8 AS jsonb), $9, $10, $11, $12) "
    "ON CONFLICT (ticket_id) DO NOTHING RETURNING ticket_id"
)


@functools.lru_cache(maxsize=16)
def _created_with_timers_sql(names: tuple[str, ...], count: int) -> str:
    """The projection's insert, the generation and ``count`` timers of these columns in one
    statement (pure, cached: a ticket.created always passes the same shape). The timers are
    inserted only when the projection is new and the generation is still ``$13``, the one the
    caller's policies belong to; ``$14`` on are the timers' columns, row after row."""
    current = f"current AS MATERIALIZED ({timers.GENERATION})"
    if not count:
        return (f"WITH projected AS ({_INSERT_PROJECTION}), {current} SELECT (SELECT generation FROM current) "
                "AS sla_generation, EXISTS (SELECT 1 FROM projected) AS sla_projected, $13::bigint AS sla_cached")
    cols = ", ".join(names)
    rows = ", ".join(
        "(" + ", ".join(f"${14 + r * len(names) + i}::{timers.COLUMN_TYPES[n]}" for i, n in enumerate(names)) + ")"
        for r in range(count))
    return (f"WITH projected AS ({_INSERT_PROJECTION}), {current}, "
            f"started AS (INSERT INTO sla_timers ({cols}) SELECT * FROM (VALUES {rows}) AS v({cols}) "
            "WHERE EXISTS (SELECT 1 FROM projected) AND (SELECT generation FROM current) = $13::bigint "
            "ON CONFLICT (ticket_id, metric) DO NOTHING RETURNING *) "
            "SELECT (SELECT generation FROM current) AS sla_generation, EXISTS (SELECT 1 FROM projected) AS sla_projected, "
            "started.* FROM (SELECT 1) AS one LEFT JOIN started ON true")


async def insert_created(conn: AsyncConnection, *, ticket_id: uuid.UUID, status: str, priority: str,
                         type: str | None, channel: str | None, tags: list[str], customer_tier: str | None,
                         custom_fields: dict[str, Any], team_id: uuid.UUID | None, assignee_id: str | None,
                         created_at: datetime, customer_id: uuid.UUID | None, timers_values: list[dict[str, Any]],
                         generation: int) -> tuple[bool, int, list[Any]]:
    """A new ticket's projection and its first timers in one round trip: (whether the
    projection is new, the current generation, the timers inserted). The timers were computed
    under ``generation``'s policies (the process's cache); they are inserted only when the
    projection is new and ``generation`` is still current in the statement's snapshot, which is
    what reading the generation with the projection and the policies after it guarantees
    (docs/sla.md, "Recalculation"). Otherwise nothing but the projection is written and the
    caller falls back to reading the ticket and the policies."""
    names = timers.start_columns(timers_values[0]) if timers_values else ()
    if any(timers.start_columns(v) != names for v in timers_values):
        raise ValueError("the timers of one statement must have the same columns")
    params: list[Any] = [ticket_id, status, priority, type, channel, tags, customer_tier,
                         orjson.dumps(custom_fields).decode(), team_id, assignee_id, created_at, customer_id, generation]
    for values in timers_values:
        params.extend(timers.start_params(values, names))
    rows = await (await driver_of(conn)).fetch(_created_with_timers_sql(names, len(timers_values)), *params)
    first = rows[0]
    started = [RecordRow(r) for r in rows if timers_values and r["id"] is not None]
    return first["sla_projected"], first["sla_generation"], started


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
