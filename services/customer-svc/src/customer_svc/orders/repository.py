"""The only place with SQL for orders (bare asyncpg)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

_COLUMNS = ("id, customer_id, source, external_id, ordered_at, amount, currency, status, items, created_at, "
            "updated_at, version")
#: what an update may change (names never come from requests)
UPDATABLE = ("ordered_at", "amount", "currency", "status", "items")


async def by_external_id(conn: Any, *, source: str, external_id: str, lock: bool = False) -> Any:
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM orders WHERE source = $1 AND external_id = $2"
                               + (" FOR UPDATE" if lock else ""), source, external_id)


async def insert(conn: Any, values: dict[str, Any]) -> Any:
    """The new row, or None when another transaction recorded the same external id first."""
    return await conn.fetchrow(
        "INSERT INTO orders (id, customer_id, source, external_id, ordered_at, amount, currency, status, items) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (source, external_id) DO NOTHING "
        f"RETURNING {_COLUMNS}",
        values["id"], values["customer_id"], values["source"], values["external_id"], values["ordered_at"],
        values["amount"], values["currency"], values["status"], values["items"])


async def update(conn: Any, order_id: uuid.UUID, values: dict[str, Any]) -> Any:
    names = [n for n in UPDATABLE if n in values]
    sets = ", ".join(f"{n} = ${i + 2}" for i, n in enumerate(names))
    return await conn.fetchrow(
        f"UPDATE orders SET {sets}, version = version + 1, updated_at = clock_timestamp() WHERE id = $1 "
        f"RETURNING {_COLUMNS}", order_id, *(values[n] for n in names))


async def get(conn: Any, order_id: uuid.UUID) -> Any:
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM orders WHERE id = $1", order_id)


async def page_of_customer(conn: Any, customer_id: uuid.UUID, *, limit: int,
                           after: tuple[datetime, uuid.UUID] | None) -> list[Any]:
    """Newest first on (ordered_at, id): the index ``ix_orders_customer_ordered_at``."""
    if after is None:
        return await conn.fetch(f"SELECT {_COLUMNS} FROM orders WHERE customer_id = $1 "
                                "ORDER BY ordered_at DESC, id DESC LIMIT $2", customer_id, limit)
    return await conn.fetch(f"SELECT {_COLUMNS} FROM orders WHERE customer_id = $1 AND (ordered_at, id) < ($2, $3) "
                            "ORDER BY ordered_at DESC, id DESC LIMIT $4", customer_id, after[0], after[1], limit)


async def customer_exists(conn: Any, customer_id: uuid.UUID) -> bool:
    """A customer that orders and behaviour events may be recorded for: not a merged tombstone
    (they would sit where no reader looks; the survivor is the one to record them for)."""
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM customers WHERE id = $1 AND merged_into IS NULL)",
                                    customer_id))
