from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, or_, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from .models import customer_identities, customers


async def owners_of(conn: AsyncConnection, identities: list[tuple[str, str]]) -> dict[tuple[str, str], uuid.UUID]:
    if not identities:
        return {}
    rows = await conn.execute(
        select(customer_identities.c.kind, customer_identities.c.value, customer_identities.c.customer_id).where(
            tuple_(customer_identities.c.kind, customer_identities.c.value).in_(identities)
        )
    )
    return {(r.kind, r.value): r.customer_id for r in rows}


async def insert_customer(conn: AsyncConnection, *, customer_id: uuid.UUID, name: str | None) -> Row:
    return (
        await conn.execute(customers.insert().values(id=customer_id, name=name).returning(*customers.c))
    ).one()


async def add_identities(
    conn: AsyncConnection, *, customer_id: uuid.UUID, identities: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """Insert identities; returns the ones actually inserted (others already have an owner)."""
    if not identities:
        return []
    rows = await conn.execute(
        pg_insert(customer_identities)
        .values([{"kind": k, "value": v, "customer_id": customer_id} for k, v in identities])
        .on_conflict_do_nothing()
        .returning(customer_identities.c.kind, customer_identities.c.value)
    )
    return [(r.kind, r.value) for r in rows]


async def get_customer(conn: AsyncConnection, customer_id: uuid.UUID) -> Row | None:
    return (await conn.execute(select(customers).where(customers.c.id == customer_id))).first()


async def identities_of(conn: AsyncConnection, customer_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[tuple[str, str]]]:
    out: dict[uuid.UUID, list[tuple[str, str]]] = {cid: [] for cid in customer_ids}
    if not customer_ids:
        return out
    rows = await conn.execute(
        select(customer_identities.c.customer_id, customer_identities.c.kind, customer_identities.c.value)
        .where(customer_identities.c.customer_id.in_(customer_ids))
        .order_by(customer_identities.c.created_at, customer_identities.c.kind)
    )
    for r in rows:
        out[r.customer_id].append((r.kind, r.value))
    return out


async def list_customers(
    conn: AsyncConnection, *, limit: int, after: tuple[datetime, uuid.UUID] | None, identity: tuple[str, str] | None
) -> list[Row]:
    stmt = select(customers)
    if identity is not None:
        stmt = stmt.where(
            customers.c.id.in_(
                select(customer_identities.c.customer_id).where(
                    customer_identities.c.kind == identity[0], customer_identities.c.value == identity[1]
                )
            )
        )
    if after is not None:
        stmt = stmt.where(
            or_(customers.c.created_at < after[0], and_(customers.c.created_at == after[0], customers.c.id < after[1]))
        )
    stmt = stmt.order_by(customers.c.created_at.desc(), customers.c.id.desc()).limit(limit)
    return list((await conn.execute(stmt)).all())
