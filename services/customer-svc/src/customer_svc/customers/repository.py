"""The only place with SQL for customers: plain SQL on a bare asyncpg connection.

Requester resolution runs for every ticket customer-svc sees, and SQLAlchemy's statement
building cost more CPU than PostgreSQL's work (the same finding as ticket-svc's intake). The
organisation a new customer joins by e-mail domain is looked up inside the insert itself, so a
new requester costs no extra round trip.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

COLUMNS = ("id, name, tier, organization_id, account_owner_id, language, time_zone, tags, notes, attributes, "
           "created_at, updated_at, version, merged_into")
#: columns an update may set (names never come from requests)
UPDATABLE = ("name", "search", "tier", "organization_id", "account_owner_id", "language", "time_zone", "tags",
             "notes", "attributes")
_BY_DOMAIN = "(SELECT organization_id FROM organization_domains WHERE domain = {})"


async def insert_customer(conn: Any, *, customer_id: uuid.UUID, name: str | None, search: str,
                          join_domain: str | None) -> Any:
    """A customer from a requester; it joins the organisation owning ``join_domain`` if any."""
    return await conn.fetchrow(
        "INSERT INTO customers (id, name, search, organization_id) "
        f"VALUES ($1, $2, $3::text::tsvector, {_BY_DOMAIN.format('$4')}) RETURNING {COLUMNS}",
        customer_id, name, search, join_domain,
    )


async def insert_full(conn: Any, values: dict[str, Any], *, join_domain: str | None) -> Any:
    """A customer from the API; without an organisation it joins the one owning ``join_domain``."""
    return await conn.fetchrow(
        "INSERT INTO customers (id, name, search, tier, organization_id, account_owner_id, language, time_zone, "
        "tags, notes, attributes) VALUES ($1, $2, $3::text::tsvector, $4, "
        f"COALESCE($5, {_BY_DOMAIN.format('$11')}), $6, $7, $8, $9, $10, $12) RETURNING {COLUMNS}",
        values["id"], values["name"], values["search"], values["tier"], values["organization_id"],
        values["account_owner_id"], values["language"], values["time_zone"], values["tags"], values["notes"],
        join_domain, values["attributes"],
    )


async def get_customer(conn: Any, customer_id: uuid.UUID, *, lock: bool = False) -> Any:
    return await conn.fetchrow(f"SELECT {COLUMNS} FROM customers WHERE id = $1" + (" FOR UPDATE" if lock else ""),
                               customer_id)


async def live_id(conn: Any, customer_id: uuid.UUID) -> uuid.UUID | None:
    """The customer a requester resolves to: ``customer_id``, or its survivor once merged. The row
    is locked: a merge of it in progress (which locks it FOR UPDATE) is waited for and then seen,
    and a merge starting now waits for this resolution, whose ticket it then moves. FOR NO KEY
    UPDATE rather than a share lock: two resolutions of one customer that both add an identity
    upgrade to FOR UPDATE (``touch_joining``), and two share locks upgrading would deadlock; an
    order's foreign-key check (KEY SHARE) is not blocked."""
    return await conn.fetchval("SELECT COALESCE(merged_into, id) FROM customers WHERE id = $1 FOR NO KEY UPDATE",
                               customer_id)


async def update_customer(conn: Any, customer_id: uuid.UUID, values: dict[str, Any]) -> Any:
    """Write ``values`` and move the version on (the caller holds the row lock)."""
    names = [n for n in UPDATABLE if n in values]
    sets = ", ".join(f"{n} = ${i + 2}" + ("::text::tsvector" if n == "search" else "") for i, n in enumerate(names))
    return await conn.fetchrow(
        f"UPDATE customers SET {sets}{', ' if sets else ''}version = version + 1, updated_at = clock_timestamp() "
        f"WHERE id = $1 RETURNING {COLUMNS}",
        customer_id, *(values[n] for n in names),
    )


async def touch_joining(conn: Any, customer_id: uuid.UUID, *, join_domain: str | None) -> Any:
    """Move the version on after identities were added, joining the organisation of
    ``join_domain`` when the customer has none; the row with ``previous_organization_id``."""
    return await conn.fetchrow(
        f"WITH old AS (SELECT id, organization_id FROM customers WHERE id = $1 FOR UPDATE) "
        f"UPDATE customers c SET version = c.version + 1, updated_at = clock_timestamp(), "
        f"organization_id = COALESCE(c.organization_id, {_BY_DOMAIN.format('$2')}) FROM old WHERE c.id = old.id "
        f"RETURNING {', '.join('c.' + col for col in COLUMNS.split(', '))}, old.organization_id AS previous_organization_id",
        customer_id, join_domain,
    )


async def search(
    conn: Any, *, limit: int, after: tuple[datetime, uuid.UUID] | None, identities: list[tuple[str, str]],
    tier: str | None = None, organization_id: uuid.UUID | None = None, account_owner_id: uuid.UUID | None = None,
    tags: list[str] | None = None, attributes: list[dict[str, Any]] | None = None,
    name_query: str | None = None, identity_values: list[str] | None = None,
    segment: str | None = None, risk_band: str | None = None,
) -> list[Any]:
    """Newest first, keyset-paginated on (created_at, id); every filter must match.

    ``name_query`` (a tsquery literal) and ``identity_values`` are one filter, ``?q=``: the name
    matches (GIN on ``search``) or an identity of any kind has one of the values (index on
    ``customer_identities.value``). Each side is its own ordered, limited query and the two are
    merged, so the planner can walk the newest customers for a common term (``王``) and use the
    GIN index for a rare one, rather than joining every match (measured at 1,000,000 customers:
    docs/customers.md, "Search"). Attribute filters are jsonb containment (GIN on
    ``attributes``), tags array containment (GIN on ``tags``)."""
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    where = ["merged_into IS NULL"]  # a merged customer is a tombstone: found through its survivor only
    for kind, value in identities:
        where.append(f"id IN (SELECT customer_id FROM customer_identities WHERE kind = {arg(kind)} "
                     f"AND value = {arg(value)})")
    if tier is not None:
        where.append(f"tier = {arg(tier)}")
    if organization_id is not None:
        where.append(f"organization_id = {arg(organization_id)}")
    if account_owner_id is not None:
        where.append(f"account_owner_id = {arg(account_owner_id)}")
    # the stored insight scores (scoring/): indexes on segment and (churn_band, churn_score)
    if segment is not None:
        where.append(f"id IN (SELECT customer_id FROM customer_insights WHERE segment = {arg(segment)})")
    if risk_band is not None:
        where.append(f"id IN (SELECT customer_id FROM customer_insights WHERE churn_band = {arg(risk_band)})")
    if tags:
        where.append(f"tags @> {arg(tags)}::text[]")
    for containment in attributes or ():
        where.append(f"attributes @> {arg(containment)}::jsonb")
    if after is not None:
        where.append(f"(created_at, id) < ({arg(after[0])}, {arg(after[1])})")
    order = f" ORDER BY created_at DESC, id DESC LIMIT {arg(limit)}"
    if name_query is None and not identity_values:
        return await conn.fetch(f"SELECT {COLUMNS} FROM customers WHERE " + " AND ".join(where) + order, *args)
    branches = []
    if name_query is not None:
        branches.append([f"search @@ {arg(name_query)}::text::tsquery"])
    if identity_values:
        branches.append([f"id IN (SELECT customer_id FROM customer_identities WHERE value = ANY({arg(identity_values)}::text[]))"])
    parts = [f"(SELECT {COLUMNS} FROM customers WHERE {' AND '.join(branch + where)}{order})" for branch in branches]
    return await conn.fetch(f"SELECT DISTINCT ON (created_at, id) * FROM ({' UNION ALL '.join(parts)}) AS found"
                            + order, *args)
