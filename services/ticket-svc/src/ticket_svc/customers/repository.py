"""SQL of ticket-svc's side of customer-svc's events: merges, identity removals, CSAT answers,
care and follow-up tasks. Bare asyncpg (the projections consumer runs raw)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from ..tickets.repository import _TICKET_COLUMNS

#: One statement moves every ticket of the merged customer and audits each one. A care ticket's
#: claim (``care_of``) moves with it unless the survivor already has an open care ticket: then the
#: moved one stays open, unclaimed, so the unique index never refuses the merge.
_REPOINT_TICKETS = (
    "WITH moved AS ("
    " UPDATE tickets SET customer_id = $2, version = version + 1, updated_at = clock_timestamp(), updated_by = $3,"
    "  care_of = CASE WHEN care_of IS NULL THEN NULL"
    "   WHEN EXISTS (SELECT 1 FROM tickets s WHERE s.care_of = $2) THEN NULL ELSE $2 END"
    " WHERE customer_id = $1 RETURNING id, number, status, priority, team_id, assignee_id, version"
    "), audited AS ("
    " INSERT INTO ticket_audit (ticket_id, actor, action, changes, at)"
    " SELECT id, $3, 'customer_merged', $4::jsonb, clock_timestamp() FROM moved"
    ") SELECT * FROM moved"
)


async def repoint_tickets(conn: Any, *, merged_id: uuid.UUID, survivor_id: uuid.UUID, actor: str) -> list[Any]:
    """Every ticket of ``merged_id`` now names ``survivor_id`` (audited); the moved tickets'
    references. None left to move on a replay."""
    audit = {"customer_id": {"before": str(merged_id), "after": str(survivor_id)}}
    return await conn.fetch(_REPOINT_TICKETS, merged_id, survivor_id, actor, audit)


async def repoint_identities(conn: Any, *, merged_id: uuid.UUID, survivor_id: uuid.UUID) -> int:
    done = await conn.execute(
        "UPDATE customer_identity_projection SET customer_id = $2, updated_at = now() WHERE customer_id = $1",
        merged_id, survivor_id,
    )
    return int(done.split()[-1])


async def drop_identity(conn: Any, *, customer_id: uuid.UUID, kind: str, value: str, value_bidx: str) -> bool:
    """Forget that ``kind:value`` is ``customer_id``'s (not if it has moved to another customer
    since): the row of its blind index, or its plaintext row written before 0018."""
    done = await conn.execute(
        "DELETE FROM customer_identity_projection WHERE kind = $1 AND customer_id = $3 "
        "AND (value_bidx = $4 OR (value_bidx IS NULL AND value = $2))",
        kind, value, customer_id, value_bidx,
    )
    return done != "DELETE 0"


async def customer_tier(conn: Any, customer_id: uuid.UUID) -> tuple[bool, str | None]:
    """(known, tier) from the tier projection."""
    row = await conn.fetchrow("SELECT tier FROM customer_tier_projection WHERE customer_id = $1", customer_id)
    return (row is not None, row["tier"] if row is not None else None)


async def recent_language(conn: Any, customer_id: uuid.UUID) -> str | None:
    """The language of the customer's newest ticket that has one."""
    return await conn.fetchval(
        "SELECT language FROM tickets WHERE customer_id = $1 AND language IS NOT NULL "
        "ORDER BY created_at DESC LIMIT 1",
        customer_id,
    )


async def store_csat(conn: Any, *, ticket_id: uuid.UUID, survey_id: uuid.UUID, rating: int, comment: str | None,
                     answered_at: datetime) -> Any:
    """Put the CSAT answer on the ticket unless it has one (customer-svc answers a survey once,
    so the first is the answer); the new row, or None when the ticket is unknown or answered."""
    return await conn.fetchrow(
        "UPDATE tickets SET csat_rating = $2, csat_comment = $3, csat_answered_at = $4, csat_survey_id = $5, "
        "version = version + 1, updated_at = clock_timestamp() "
        f"WHERE id = $1 AND csat_answered_at IS NULL RETURNING {_TICKET_COLUMNS}",
        ticket_id, rating, comment, answered_at, survey_id,
    )


async def claim_task_origin(conn: Any, *, origin: str, ticket_id: uuid.UUID) -> bool:
    """Claim ``origin`` for the task about to be opened; False when a task already has it."""
    return bool(await conn.fetchval(
        "INSERT INTO ticket_task_origins (origin, ticket_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
        origin, ticket_id,
    ))


async def open_care_ticket(conn: Any, customer_id: uuid.UUID, *, lock: bool = False) -> Any:
    """The customer's open care ticket (the one holding ``care_of``), or None."""
    return await conn.fetchrow(
        f"SELECT {_TICKET_COLUMNS} FROM tickets WHERE care_of = $1" + (" FOR UPDATE" if lock else ""), customer_id,
    )
