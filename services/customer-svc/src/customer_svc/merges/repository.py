"""The only place with SQL for merges and identity splits (bare asyncpg).

Every statement that moves rows selects them by ``customer_id`` through that table's own index
on it (``customer_identities``, ``orders``, ``interactions``, ``surveys``, ``customer_tickets``,
``customer_timeline``), so a merge costs what the two customers hold, not what the base holds."""

from __future__ import annotations

import uuid
from typing import Any

from ..pii.codec import codec

#: tables whose rows simply change owner (the name is the audit's key in ``moved``)
_MOVED_TABLES = ("orders", "surveys", "customer_timeline")


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


async def move_identities(conn: Any, *, merged_id: uuid.UUID, survivor_id: uuid.UUID) -> list[Any]:
    """Every identity of the merged customer becomes the survivor's. A (kind, value) belongs to one
    customer at most, so none can collide with the survivor's own."""
    rows = await conn.fetch(
        "UPDATE customer_identities SET customer_id = $2 WHERE customer_id = $1 RETURNING id, kind, value, value_enc",
        merged_id, survivor_id)
    box = codec()
    return [box.identity(r) for r in rows]


async def move_rows(conn: Any, *, merged_id: uuid.UUID, survivor_id: uuid.UUID) -> dict[str, int]:
    """Orders, surveys, the ticket projection and the timeline follow the survivor; the counts."""
    moved = {}
    for table in _MOVED_TABLES:
        moved[table] = _count(await conn.execute(
            f"UPDATE {table} SET customer_id = $2 WHERE customer_id = $1", merged_id, survivor_id))
    return moved


async def move_tickets(conn: Any, *, merged_id: uuid.UUID, survivor_id: uuid.UUID) -> list[uuid.UUID]:
    """The ticket projection follows the survivor; the ids of the tickets moved."""
    rows = await conn.fetch("UPDATE customer_tickets SET customer_id = $2 WHERE customer_id = $1 RETURNING ticket_id",
                            merged_id, survivor_id)
    return [r["ticket_id"] for r in rows]


async def move_interactions(conn: Any, *, merged_id: uuid.UUID, survivor_id: uuid.UUID) -> tuple[int, int]:
    """Behaviour events follow the survivor; one the survivor holds under the same external id is
    the same fact recorded twice, and the merged copy is dropped (the unique
    ``(customer_id, external_id)`` allows one). (moved, dropped)."""
    dropped = _count(await conn.execute(
        "DELETE FROM interactions m WHERE m.customer_id = $1 AND m.external_id IS NOT NULL AND EXISTS "
        "(SELECT 1 FROM interactions s WHERE s.customer_id = $2 AND s.external_id = m.external_id)",
        merged_id, survivor_id))
    moved = _count(await conn.execute("UPDATE interactions SET customer_id = $2 WHERE customer_id = $1",
                                      merged_id, survivor_id))
    return moved, dropped


async def drop_scores(conn: Any, merged_id: uuid.UUID) -> None:
    """The merged customer's stored scores and pending rescoring: the survivor is rescored over
    the facts of both instead."""
    await conn.execute("DELETE FROM customer_insights WHERE customer_id = $1", merged_id)
    await conn.execute("DELETE FROM insight_dirty WHERE customer_id = $1", merged_id)


async def mark_merged(conn: Any, *, merged_id: uuid.UUID, survivor_id: uuid.UUID) -> None:
    """Make the merged row a tombstone pointing at the survivor, and re-point older tombstones
    that pointed at it, so a merged id answers with the final survivor in one hop
    (``ix_customers_merged_into``)."""
    await conn.execute(
        "UPDATE customers SET merged_into = $2, version = version + 1, updated_at = clock_timestamp() WHERE id = $1",
        merged_id, survivor_id)
    await conn.execute("UPDATE customers SET merged_into = $2 WHERE merged_into = $1", merged_id, survivor_id)


async def insert_audit(conn: Any, *, merge_id: uuid.UUID, survivor_id: uuid.UUID, merged_id: uuid.UUID,
                       actor: str, identities: list[dict[str, Any]], moved: dict[str, int]) -> Any:
    return await conn.fetchrow(
        "INSERT INTO customer_merges (id, survivor_id, merged_id, actor, at, identities, moved) "
        "VALUES ($1, $2, $3, $4, clock_timestamp(), $5, $6) RETURNING at",
        merge_id, survivor_id, merged_id, actor, identities, moved)


async def move_identity(conn: Any, *, identity_id: uuid.UUID, from_id: uuid.UUID, to_id: uuid.UUID) -> Any:
    """Hand one identity to another customer (the caller holds both rows' locks)."""
    row = await conn.fetchrow(
        "UPDATE customer_identities SET customer_id = $3 WHERE id = $1 AND customer_id = $2 "
        "RETURNING id, kind, value, value_enc", identity_id, from_id, to_id)
    return None if row is None else codec().identity(row)
