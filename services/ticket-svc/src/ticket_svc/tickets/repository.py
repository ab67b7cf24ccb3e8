"""All SQL of the tickets domain (SQLAlchemy Core: this is the intake hot path)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from .models import customer_identities, idempotency_keys, tickets


async def claim_idempotency_key(
    conn: AsyncConnection, *, principal: str, key: str, request_hash: str, ticket_id: uuid.UUID
) -> tuple[uuid.UUID, str]:
    """Claim ``key`` for ``ticket_id``; returns the owner (ours or an earlier request's).

    A concurrent claim of the same key blocks on the unique index until the first
    transaction ends, then either sees its committed row or takes the key itself.
    """
    claimed = (
        await conn.execute(
            pg_insert(idempotency_keys)
            .values(principal=principal, key=key, request_hash=request_hash, ticket_id=ticket_id)
            .on_conflict_do_nothing()
            .returning(idempotency_keys.c.ticket_id, idempotency_keys.c.request_hash)
        )
    ).first()
    if claimed is None:
        claimed = (
            await conn.execute(
                select(idempotency_keys.c.ticket_id, idempotency_keys.c.request_hash).where(
                    idempotency_keys.c.principal == principal, idempotency_keys.c.key == key
                )
            )
        ).one()
    return claimed[0], claimed[1]


async def insert_ticket(conn: AsyncConnection, values: dict[str, Any], *, identity: tuple[str, str] | None) -> Row:
    """Insert and link to a known customer in the same statement (projection lookup)."""
    customer = None
    if identity is not None:
        customer = (
            select(customer_identities.c.customer_id)
            .where(customer_identities.c.kind == identity[0], customer_identities.c.value == identity[1])
            .scalar_subquery()
        )
    stmt = tickets.insert().values(**values, customer_id=customer).returning(*tickets.c)
    return (await conn.execute(stmt)).one()


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
