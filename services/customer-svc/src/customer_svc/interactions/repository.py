"""The only place with SQL for behaviour events (bare asyncpg)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

_COLUMNS = "id, customer_id, kind, occurred_at, external_id, properties, created_at"


async def insert(conn: Any, values: dict[str, Any]) -> Any:
    """The new row, or None when the customer has an event with this external id already."""
    return await conn.fetchrow(
        "INSERT INTO interactions (id, customer_id, kind, occurred_at, external_id, properties) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (customer_id, external_id) WHERE external_id IS NOT NULL "
        f"DO NOTHING RETURNING {_COLUMNS}",
        values["id"], values["customer_id"], values["kind"], values["occurred_at"], values["external_id"],
        values["properties"])


async def by_external_id(conn: Any, customer_id: uuid.UUID, external_id: str) -> Any:
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM interactions WHERE customer_id = $1 AND external_id = $2",
                               customer_id, external_id)


async def page_of_customer(conn: Any, customer_id: uuid.UUID, *, limit: int,
                           after: tuple[datetime, uuid.UUID] | None) -> list[Any]:
    if after is None:
        return await conn.fetch(f"SELECT {_COLUMNS} FROM interactions WHERE customer_id = $1 "
                                "ORDER BY occurred_at DESC, id DESC LIMIT $2", customer_id, limit)
    return await conn.fetch(f"SELECT {_COLUMNS} FROM interactions WHERE customer_id = $1 "
                            "AND (occurred_at, id) < ($2, $3) ORDER BY occurred_at DESC, id DESC LIMIT $4",
                            customer_id, after[0], after[1], limit)
