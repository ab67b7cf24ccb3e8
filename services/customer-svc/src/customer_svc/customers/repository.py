"""The only place with SQL for customers: plain SQL on a bare asyncpg connection.

Requester resolution runs for every ticket customer-svc sees, and SQLAlchemy's statement
building cost more CPU than PostgreSQL's work (the same finding as ticket-svc's intake). The
organisation a new customer joins by e-mail domain is looked up inside the insert itself, so a
new requester costs no extra round trip.

Names and notes are stored encrypted with the name's blind indexes beside them (``pii/codec.py``):
writes here take plaintext and store only ciphertext; reads give rows (dicts) with ``name`` and
``notes`` in plaintext, whichever form the row holds.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from helpdesk_common.outbox import insert_from_sql

from ..db import outbox
from ..identities import repository as identity_store
from ..identities.repository import Pair
from ..pii.codec import codec

#: what a read selects; ``name``/``notes`` are the plaintext of rows not yet re-encrypted
COLUMNS = ("id, name, name_enc, tier, organization_id, account_owner_id, language, time_zone, tags, notes, notes_enc, "
           "attributes, created_at, updated_at, version, merged_into")
#: columns an update may set (names never come from requests); ``name`` and ``notes`` are stored
#: as their encrypted columns
UPDATABLE = ("name", "search", "tier", "organization_id", "account_owner_id", "language", "time_zone", "tags",
             "notes", "attributes")
_BY_DOMAIN = "(SELECT organization_id FROM organization_domains WHERE domain = {})"


def _stored(values: dict[str, Any]) -> dict[str, Any]:
    """The columns to write for ``values``: a name becomes its ciphertext, duplicate key and search
    terms (the plaintext column cleared), notes their ciphertext."""
    out = {n: v for n, v in values.items() if n not in ("name", "notes", "search")}
    box = codec()
    if "name" in values:
        name = values["name"]
        out.update(name=None, name_enc=box.seal_name(name), name_key=box.name_key(name),
                   search=box.search_document(name))
    if "notes" in values:
        out.update(notes=None, notes_enc=box.seal_notes(values["notes"]))
    return out


def _read(row: Any) -> dict[str, Any] | None:
    return codec().customer_optional(row)


async def insert_customer(conn: Any, *, customer_id: uuid.UUID, name: str | None, join_domain: str | None) -> Any:
    """A customer from a requester; it joins the organisation owning ``join_domain`` if any."""
    box = codec()
    return _read(await conn.fetchrow(
        "INSERT INTO customers (id, name_enc, name_key, search, organization_id) "
        f"VALUES ($1, $2, $3, $4::text::tsvector, {_BY_DOMAIN.format('$5')}) RETURNING {COLUMNS}",
        customer_id, box.seal_name(name), box.name_key(name), box.search_document(name), join_domain,
    ))


async def insert_with_identities(conn: Any, *, customer_id: uuid.UUID, name: str | None, join_domain: str | None,
                                 identities: list[Pair]) -> tuple[Any, list[Pair]]:
    """A customer from a requester, with its identities, in one statement: the customer (it joins
    the organisation owning ``join_domain`` if any) and the identities actually inserted (one
    missing is someone else's now: ``identities.repository.ADD``)."""
    box = codec()
    arrays, by_index = identity_store.sealed(identities)
    row = await conn.fetchrow(
        f"WITH i AS ({identity_store.ADD}), c AS (INSERT INTO customers (id, name_enc, name_key, search, "
        f"organization_id) VALUES ($6, $7, $8, $9::text::tsvector, {_BY_DOMAIN.format('$10')}) RETURNING {COLUMNS}) "
        "SELECT c.*, a.added_kinds, a.added_bidx FROM c, LATERAL (SELECT array_agg(i.kind) AS added_kinds, "
        "array_agg(i.value_bidx) AS added_bidx FROM i) AS a",
        *arrays, customer_id, box.seal_name(name), box.name_key(name), box.search_document(name), join_domain,
    )
    customer = box.customer(row)
    pairs = zip(customer.pop("added_kinds") or (), customer.pop("added_bidx") or ())
    return customer, [by_index[pair] for pair in pairs]


async def insert_full(conn: Any, values: dict[str, Any], *, join_domain: str | None) -> Any:
    """A customer from the API; without an organisation it joins the one owning ``join_domain``."""
    stored = _stored(values)
    return _read(await conn.fetchrow(
        "INSERT INTO customers (id, name_enc, name_key, search, tier, organization_id, account_owner_id, language, "
        "time_zone, tags, notes_enc, attributes) VALUES ($1, $2, $3, $4::text::tsvector, $5, "
        f"COALESCE($6, {_BY_DOMAIN.format('$12')}), $7, $8, $9, $10, $11, $13) RETURNING {COLUMNS}",
        stored["id"], stored["name_enc"], stored["name_key"], stored["search"], stored["tier"],
        stored["organization_id"], stored["account_owner_id"], stored["language"], stored["time_zone"],
        stored["tags"], stored["notes_enc"], join_domain, stored["attributes"],
    ))


async def get_customer(conn: Any, customer_id: uuid.UUID, *, lock: bool = False) -> Any:
    return _read(await conn.fetchrow(f"SELECT {COLUMNS} FROM customers WHERE id = $1"
                                     + (" FOR UPDATE" if lock else ""), customer_id))


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
    stored = _stored({n: values[n] for n in UPDATABLE if n in values})
    names = list(stored)
    sets = ", ".join(f"{n} = ${i + 2}" + ("::text::tsvector" if n == "search" else "") for i, n in enumerate(names))
    return _read(await conn.fetchrow(
        f"UPDATE customers SET {sets}{', ' if sets else ''}version = version + 1, updated_at = clock_timestamp() "
        f"WHERE id = $1 RETURNING {COLUMNS}",
        customer_id, *(stored[n] for n in names),
    ))


async def touch_joining(conn: Any, customer_id: uuid.UUID, *, join_domain: str | None) -> Any:
    """Move the version on after identities were added, joining the organisation of
    ``join_domain`` when the customer has none; the row with ``previous_organization_id``."""
    return _read(await conn.fetchrow(
        f"WITH old AS (SELECT id, organization_id FROM customers WHERE id = $1 FOR UPDATE) "
        f"UPDATE customers c SET version = c.version + 1, updated_at = clock_timestamp(), "
        f"organization_id = COALESCE(c.organization_id, {_BY_DOMAIN.format('$2')}) FROM old WHERE c.id = old.id "
        f"RETURNING {', '.join('c.' + col for col in COLUMNS.split(', '))}, old.organization_id AS previous_organization_id",
        customer_id, join_domain,
    ))


async def search(
    conn: Any, *, limit: int, after: tuple[datetime, uuid.UUID] | None, identities: list[tuple[str, str]],
    tier: str | None = None, organization_id: uuid.UUID | None = None, account_owner_id: uuid.UUID | None = None,
    tags: list[str] | None = None, attributes: list[dict[str, Any]] | None = None,
    name_query: tuple[str, str | None] | None = None, identity_values: list[str] | None = None,
    segment: str | None = None, risk_band: str | None = None,
) -> list[Any]:
    """Newest first, keyset-paginated on (created_at, id); every filter must match.

    ``name_query`` (tsquery literals over the opaque terms and, for rows not yet re-encrypted, the
    plaintext lexemes) and ``identity_values`` are one filter, ``?q=``: the name matches (GIN on
    ``search``) or an identity of any kind has one of the values (by blind index,
    ``ix_customer_identities_bidx``, or legacy plaintext). Each side is its own ordered, limited query and the two are
    merged, so the planner can walk the newest customers for a common term (``王``) and use the
    GIN index for a rare one, rather than joining every match (measured at 1,000,000 customers:
    docs/customers.md, "Search"). Attribute filters are jsonb containment (GIN on
    ``attributes``), tags array containment (GIN on ``tags``)."""
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    where = ["merged_into IS NULL"]  # a merged customer is a tombstone: found through its survivor only
    box = codec()
    for kind, value in identities:
        where.append(f"id IN (SELECT customer_id FROM customer_identities WHERE kind = {arg(kind)} "
                     f"AND (value_bidx = {arg(box.identity_index(value))} OR value = {arg(value)}))")
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
        return [box.customer(r) for r in
                await conn.fetch(f"SELECT {COLUMNS} FROM customers WHERE " + " AND ".join(where) + order, *args)]
    branches = []
    if name_query is not None:
        opaque, plain = name_query
        match = f"search @@ {arg(opaque)}::text::tsquery"
        if plain is not None:  # a row not re-encrypted yet holds its plaintext name and lexemes
            match = f"({match} OR (name IS NOT NULL AND search @@ {arg(plain)}::text::tsquery))"
        branches.append([match])
    if identity_values:
        indexes = [box.identity_index(v) for v in identity_values]
        branches.append([f"id IN (SELECT customer_id FROM customer_identities WHERE value_bidx = "
                         f"ANY({arg(indexes)}::text[]) OR value = ANY({arg(identity_values)}::text[]))"])
    parts = [f"(SELECT {COLUMNS} FROM customers WHERE {' AND '.join(branch + where)}{order})" for branch in branches]
    rows = await conn.fetch(f"SELECT DISTINCT ON (created_at, id) * FROM ({' UNION ALL '.join(parts)}) AS found"
                            + order, *args)
    return [box.customer(r) for r in rows]


#: what a new customer's own statement decides of its ``customer.created``: when it was made
#: (the insert's clock) and the organisation it joined by its e-mail domain (the insert's lookup)
CREATED_FROM_ROW = ("created_at", "organization_id")


class NewCustomer:
    """A requester's new customer written by another statement (the ticket projection's, on
    every ``ticket.created`` of a new requester: one round trip where the customer with its
    identities was a statement of its own): CTEs for that statement's WITH, their parameters,
    and the identities the statement actually inserted.

    The CTEs insert the identities (``identities.repository.ADD``), the customer (joining the
    organisation owning ``join_domain``, as ``insert_with_identities`` does) and its
    ``customer.created``, whose ``created_at`` and ``organization_id`` come from the row
    (``CREATED_FROM_ROW``). The statement returns the identities it inserted (``ADDED``, read
    whatever else it did): fewer than asked means another transaction claimed one first, and
    the caller must roll back."""

    def __init__(self, *, customer_id: uuid.UUID, name: str | None, join_domain: str | None,
                 identities: list[Pair], created: list[Any]) -> None:
        box = codec()
        self.customer_id = customer_id
        self.identities = identities
        arrays, self._by_index = identity_store.sealed(identities)
        self._params = [*arrays, customer_id, box.seal_name(name), box.name_key(name), box.search_document(name),
                        join_domain, *created]

    def params(self) -> list[Any]:
        return self._params

    def ctes(self, first: int) -> str:
        """``new_identities``, ``new_customer`` and ``new_customer_created``, parameters from
        ``$first``; the statement's other outbox rows go after ``CREATED`` (``insert_many_sql``'s
        ``after``): the customer's creation is announced before what follows from it."""
        add = re.sub(r"\$(\d+)", lambda m: f"${first + int(m.group(1)) - 1}", identity_store.ADD)
        p = first + 5  # ADD's owner parameter is the customer's id
        return (f"new_identities AS ({add}), new_customer AS (INSERT INTO customers (id, name_enc, name_key, "
                f"search, organization_id) VALUES (${p}, ${p + 1}, ${p + 2}, ${p + 3}::text::tsvector, "
                f"{_BY_DOMAIN.format(f'${p + 4}::text')}) RETURNING created_at, organization_id), "
                f"new_customer_created AS ({insert_from_sql(outbox, source='new_customer', first=p + 5, data_from=CREATED_FROM_ROW)}"
                " RETURNING seq)")

    #: the CTE of the customer's ``customer.created``
    CREATED = "new_customer_created"
    #: a one-row relation of the statement's result with ``added``'s two columns
    ADDED = ("(SELECT array_agg(n.kind) AS new_added_kinds, array_agg(n.value_bidx) AS new_added_bidx "
             "FROM new_identities n) AS added")

    def added(self, row: Any) -> list[Pair]:
        """The identities the statement inserted (one missing is someone else's now)."""
        pairs = zip(row["new_added_kinds"] or (), row["new_added_bidx"] or ())
        return [self._by_index[pair] for pair in pairs]
