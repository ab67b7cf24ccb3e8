"""The only place with SQL for customers: plain SQL on a bare asyncpg connection.

Requester resolution runs for every ticket customer-svc sees, and SQLAlchemy's statement
building cost more CPU than PostgreSQL's work (the same finding as ticket-svc's intake).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

Pair = tuple[str, str]
_COLUMNS = "id, name, tier, created_at, updated_at, version"
#: columns an update may set (names never come from requests)
UPDATABLE = frozenset({"name", "tier"})


async def owners_of(conn: Any, identities: list[Pair]) -> dict[Pair, uuid.UUID]:
    """The customer owning each of ``identities`` (kind, normalised value) that has one."""
    if not identities:
        return {}
    rows = await conn.fetch(
        "SELECT c.kind, c.value, c.customer_id FROM customer_identities c "
        "JOIN unnest($1::text[], $2::text[]) AS wanted(kind, value) USING (kind, value)",
        [k for k, _ in identities], [v for _, v in identities],
    )
    return {(r["kind"], r["value"]): r["customer_id"] for r in rows}


async def insert_customer(conn: Any, *, customer_id: uuid.UUID, name: str | None) -> Any:
    return await conn.fetchrow(f"INSERT INTO customers (id, name) VALUES ($1, $2) RETURNING {_COLUMNS}",
                               customer_id, name)


async def add_identities(conn: Any, *, customer_id: uuid.UUID, identities: list[Pair]) -> list[Pair]:
    """Insert identities for a customer; returns those actually inserted.

    ``ON CONFLICT DO NOTHING`` waits for a concurrent uncommitted insert of the same
    (kind, value) and then skips it, so a missing pair means someone else owns it now.
    """
    if not identities:
        return []
    rows = await conn.fetch(
        "INSERT INTO customer_identities (kind, value, customer_id) "
        "SELECT kind, value, $3 FROM unnest($1::text[], $2::text[]) AS u(kind, value) "
        "ON CONFLICT (kind, value) DO NOTHING RETURNING kind, value",
        [k for k, _ in identities], [v for _, v in identities], customer_id,
    )
    return [(r["kind"], r["value"]) for r in rows]


async def get_customer(conn: Any, customer_id: uuid.UUID, *, lock: bool = False) -> Any:
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM customers WHERE id = $1" + (" FOR UPDATE" if lock else ""),
                               customer_id)


async def update_customer(conn: Any, customer_id: uuid.UUID, values: dict[str, Any]) -> Any:
    """Write ``values`` and move the version on (the caller holds the row lock)."""
    names = [n for n in values if n in UPDATABLE]
    sets = ", ".join(f"{n} = ${i + 2}" for i, n in enumerate(names))
    return await conn.fetchrow(
        f"UPDATE customers SET {sets}, version = version + 1, updated_at = clock_timestamp() "
        f"WHERE id = $1 RETURNING {_COLUMNS}",
        customer_id, *(values[n] for n in names),
    )


async def identities_of(conn: Any, customer_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Pair]]:
    out: dict[uuid.UUID, list[Pair]] = {cid: [] for cid in customer_ids}
    if not customer_ids:
        return out
    rows = await conn.fetch(
        "SELECT customer_id, kind, value FROM customer_identities WHERE customer_id = ANY($1::uuid[]) "
        "ORDER BY customer_id, created_at, kind, value",
        customer_ids,
    )
    for r in rows:
        out[r["customer_id"]].append((r["kind"], r["value"]))
    return out


async def list_customers(
    conn: Any, *, limit: int, after: tuple[datetime, uuid.UUID] | None, identities: list[Pair],
    tier: str | None = None,
) -> list[Any]:
    """Newest first, keyset-paginated on (created_at, id); every filter must match."""
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    where = []
    for kind, value in identities:
        where.append(f"id IN (SELECT customer_id FROM customer_identities WHERE kind = {arg(kind)} "
                     f"AND value = {arg(value)})")
    if tier is not None:
        where.append(f"tier = {arg(tier)}")
    if after is not None:
        where.append(f"(created_at, id) < ({arg(after[0])}, {arg(after[1])})")
    sql = f"SELECT {_COLUMNS} FROM customers" + (" WHERE " + " AND ".join(where) if where else "")
    return await conn.fetch(sql + f" ORDER BY created_at DESC, id DESC LIMIT {arg(limit)}", *args)
