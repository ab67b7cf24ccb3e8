"""The only place with SQL for customers (SQLAlchemy Core on the caller's connection)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from .models import customer_identities, customers

Pair = tuple[str, str]


async def owners_of(conn: AsyncConnection, identities: list[Pair]) -> dict[Pair, uuid.UUID]:
    """The customer owning each of ``identities`` (kind, normalised value) that has one."""
    if not identities:
        return {}
    ci = customer_identities.c
    rows = await conn.execute(
        select(ci.kind, ci.value, ci.customer_id).where(tuple_(ci.kind, ci.value).in_(identities))
    )
    return {(r.kind, r.value): r.customer_id for r in rows}


async def insert_customer(conn: AsyncConnection, *, customer_id: uuid.UUID, name: str | None) -> Row:
    return (
        await conn.execute(customers.insert().values(id=customer_id, name=name).returning(*customers.c))
    ).one()


async def add_identities(conn: AsyncConnection, *, customer_id: uuid.UUID, identities: list[Pair]) -> list[Pair]:
    """Insert identities for a customer; returns those actually inserted.

    ``ON CONFLICT DO NOTHING`` waits for a concurrent uncommitted insert of the same
    (kind, value) and then skips it, so a missing pair means someone else owns it now.
    """
    if not identities:
        return []
    rows = await conn.execute(
        pg_insert(customer_identities)
        .values([{"kind": k, "value": v, "customer_id": customer_id} for k, v in identities])
        .on_conflict_do_nothing(index_elements=[customer_identities.c.kind, customer_identities.c.value])
        .returning(customer_identities.c.kind, customer_identities.c.value)
    )
    return [(r.kind, r.value) for r in rows]


async def get_customer(conn: AsyncConnection, customer_id: uuid.UUID, *, lock: bool = False) -> Row | None:
    stmt = select(customers).where(customers.c.id == customer_id)
    return (await conn.execute(stmt.with_for_update() if lock else stmt)).first()


async def update_customer(conn: AsyncConnection, customer_id: uuid.UUID, values: dict[str, Any]) -> Row:
    """Write ``values`` and move the version on (the caller holds the row lock)."""
    c = customers.c
    stmt = (customers.update().where(c.id == customer_id)
            .values(**values, version=c.version + 1, updated_at=func.clock_timestamp()).returning(*customers.c))
    return (await conn.execute(stmt)).one()


async def identities_of(conn: AsyncConnection, customer_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Pair]]:
    out: dict[uuid.UUID, list[Pair]] = {cid: [] for cid in customer_ids}
    if not customer_ids:
        return out
    ci = customer_identities.c
    rows = await conn.execute(
        select(ci.customer_id, ci.kind, ci.value)
        .where(ci.customer_id.in_(customer_ids))
        .order_by(ci.customer_id, ci.created_at, ci.kind, ci.value)
    )
    for r in rows:
        out[r.customer_id].append((r.kind, r.value))
    return out


async def list_customers(
    conn: AsyncConnection, *, limit: int, after: tuple[datetime, uuid.UUID] | None, identities: list[Pair],
    tier: str | None = None,
) -> list[Row]:
    """Newest first, keyset-paginated on (created_at, id); every filter must match."""
    c = customers.c
    stmt = select(customers)
    if tier is not None:
        stmt = stmt.where(c.tier == tier)
    for kind, value in identities:
        stmt = stmt.where(
            c.id.in_(
                select(customer_identities.c.customer_id).where(
                    customer_identities.c.kind == kind, customer_identities.c.value == value
                )
            )
        )
    if after is not None:
        stmt = stmt.where(or_(c.created_at < after[0], and_(c.created_at == after[0], c.id < after[1])))
    stmt = stmt.order_by(c.created_at.desc(), c.id.desc()).limit(limit)
    return list((await conn.execute(stmt)).all())
