"""All SQL of the tickets domain (SQLAlchemy Core: this is the intake hot path)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from .models import customer_identities, tickets


# Intake runs on a bare asyncpg connection (runtime.raw_transaction): per statement,
# SQLAlchemy's async layer cost more CPU than the database work (docs/ARCHITECTURE.md).
_TICKET_COLUMNS = ", ".join(c.name for c in tickets.c)
_CLAIM_KEY = (
    "INSERT INTO idempotency_keys (principal, key, request_hash, ticket_id) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT DO NOTHING RETURNING ticket_id, request_hash"
)
_KEY_OWNER = "SELECT ticket_id, request_hash FROM idempotency_keys WHERE principal = $1 AND key = $2"
_INSERT_TICKET = (
    "INSERT INTO tickets (id, subject, description, status, priority, type, channel, tags, custom_fields, requester, "
    "requester_identity_kind, requester_identity_value, created_by, created_at, updated_at, customer_id) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, "
    "(SELECT customer_id FROM customer_identity_projection WHERE kind = $11 AND value = $12)) "
    f"RETURNING {_TICKET_COLUMNS}"
)
_GET_TICKET = f"SELECT {_TICKET_COLUMNS} FROM tickets WHERE id = $1"


async def claim_idempotency_key(
    conn: Any, *, principal: str, key: str, request_hash: str, ticket_id: uuid.UUID
) -> tuple[uuid.UUID, str]:
    """Claim ``key`` for ``ticket_id``; returns the owner (ours or an earlier request's).

    A concurrent claim of the same key blocks on the unique index until the first
    transaction ends, then either sees its committed row or takes the key itself.
    """
    claimed = await conn.fetchrow(_CLAIM_KEY, principal, key, request_hash, ticket_id)
    if claimed is None:
        claimed = await conn.fetchrow(_KEY_OWNER, principal, key)
    return uuid.UUID(str(claimed[0])), claimed[1]


async def insert_ticket(conn: Any, v: dict[str, Any]) -> Any:
    """Insert and link to a known customer in the same statement (projection lookup)."""
    return await conn.fetchrow(
        _INSERT_TICKET, v["id"], v["subject"], v["description"], v["status"], v["priority"], v["type"], v["channel"],
        v["tags"], v["custom_fields"], v["requester"], v["requester_identity_kind"], v["requester_identity_value"],
        v["created_by"], v["created_at"], v["updated_at"],
    )


async def get_ticket_raw(conn: Any, ticket_id: uuid.UUID) -> Any:
    return await conn.fetchrow(_GET_TICKET, ticket_id)


async def get_ticket(conn: AsyncConnection, ticket_id: uuid.UUID) -> Row | None:
    return (await conn.execute(select(tickets).where(tickets.c.id == ticket_id))).first()


async def list_tickets(
    conn: AsyncConnection,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
    created_by: str | None,
    status: str | None,
    priority: str | None,
    customer_id: uuid.UUID | None,
) -> list[Row]:
    stmt = select(tickets)
    if created_by is not None:
        stmt = stmt.where(tickets.c.created_by == created_by)
    if status is not None:
        stmt = stmt.where(tickets.c.status == status)
    if priority is not None:
        stmt = stmt.where(tickets.c.priority == priority)
    if customer_id is not None:
        stmt = stmt.where(tickets.c.customer_id == customer_id)
    if after is not None:
        created_at, ticket_id = after
        stmt = stmt.where(
            or_(
                tickets.c.created_at < created_at,
                and_(tickets.c.created_at == created_at, tickets.c.id < ticket_id),
            )
        )
    stmt = stmt.order_by(tickets.c.created_at.desc(), tickets.c.id.desc()).limit(limit)
    return list((await conn.execute(stmt)).all())


async def upsert_identities(conn: AsyncConnection, *, customer_id: uuid.UUID, identities: list[tuple[str, str]]) -> None:
    if not identities:
        return
    stmt = pg_insert(customer_identities).values(
        [{"kind": k, "value": v, "customer_id": customer_id} for k, v in identities]
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[customer_identities.c.kind, customer_identities.c.value],
        set_={"customer_id": stmt.excluded.customer_id, "updated_at": func.now()},
    )
    await conn.execute(stmt)


async def link_customer(conn: AsyncConnection, *, ticket_id: uuid.UUID, customer_id: uuid.UUID) -> bool:
    """Set the ticket's customer; True if it changed."""
    changed = await conn.scalar(
        update(tickets)
        .where(tickets.c.id == ticket_id, tickets.c.customer_id.is_distinct_from(customer_id))
        .values(customer_id=customer_id, updated_at=func.now(), version=tickets.c.version + 1)
        .returning(tickets.c.id)
    )
    return changed is not None


async def set_first_response_due(conn: AsyncConnection, *, ticket_id: uuid.UUID, due_at: datetime) -> None:
    await conn.execute(
        update(tickets)
        .where(tickets.c.id == ticket_id, tickets.c.first_response_due_at.is_distinct_from(due_at))
        .values(first_response_due_at=due_at)
    )
