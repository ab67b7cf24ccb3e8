"""The only place with SQL for identities: plain SQL on a bare asyncpg connection.

``owners_of`` and ``add_identities`` are on the path of every ticket (requester resolution);
they stay one statement each.
"""

from __future__ import annotations

import uuid
from typing import Any

Pair = tuple[str, str]


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


async def identities_of(conn: Any, customer_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Any]]:
    """Each customer's identities (records with id, kind, value), oldest first."""
    out: dict[uuid.UUID, list[Any]] = {cid: [] for cid in customer_ids}
    if not customer_ids:
        return out
    rows = await conn.fetch(
        "SELECT customer_id, id, kind, value FROM customer_identities WHERE customer_id = ANY($1::uuid[]) "
        "ORDER BY customer_id, created_at, kind, value",
        customer_ids,
    )
    for r in rows:
        out[r["customer_id"]].append(r)
    return out


async def delete_identity(conn: Any, *, customer_id: uuid.UUID, identity_id: uuid.UUID) -> Any:
    """Remove one identity of the customer (the caller holds the customer's row lock); the row, or None."""
    return await conn.fetchrow(
        "DELETE FROM customer_identities WHERE id = $1 AND customer_id = $2 RETURNING id, kind, value",
        identity_id, customer_id,
    )
