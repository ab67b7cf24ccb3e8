"""The only place with SQL for identities: plain SQL on a bare asyncpg connection.

``owners_of`` and ``add_identities`` are on the path of every ticket (requester resolution);
they stay one statement each, and a new requester's identities are inserted by the customer's
own insert (``customers.repository.NewCustomer``, in the ticket projection's statement, or
``insert_with_identities``). Values are stored encrypted and found by their blind index
(``pii/codec.py``); rows not yet re-encrypted are matched by their plaintext as well.
"""

from __future__ import annotations

import uuid
from typing import Any

from ..pii.codec import codec

Pair = tuple[str, str]
#: what a read of identities selects (the codec turns it into id, kind, value)
READ = "id, kind, value, value_enc"


async def owners_of(conn: Any, identities: list[Pair]) -> dict[Pair, uuid.UUID]:
    """The customer owning each of ``identities`` (kind, normalised value) that has one."""
    if not identities:
        return {}
    box = codec()
    indexes = [box.identity_index(v) for _, v in identities]
    by_index = {(k, b): (k, v) for (k, v), b in zip(identities, indexes)}
    # One index probe per wanted identity and form (blind index, or a plaintext row the
    # re-encryption has not reached), whatever the statistics say. As a join with an OR
    # condition, the planner hashed on ``kind`` and filtered every identity of that kind while it
    # believed the table small: 1.1 ms of server time per ticket at a few thousand customers
    # (bench/profile.py --statements), growing with them. The arrays are sub-selects so that the
    # planner sizes ``wanted`` the same with or without their values: with the values it counted
    # them, the plan for any values (10 assumed) looked dearer, and PostgreSQL planned the statement
    # again at every execution (0.29 ms, five times its execution; the same plan each time).
    rows = await conn.fetch(
        "SELECT c.kind, c.value, c.value_bidx, c.customer_id "
        "FROM unnest((SELECT $1::text[]), (SELECT $2::text[]), (SELECT $3::text[])) AS wanted(kind, value, bidx) "
        "CROSS JOIN LATERAL ("
        " SELECT i.id, i.kind, i.value, i.value_bidx, i.customer_id FROM customer_identities i"
        " WHERE i.kind = wanted.kind AND i.value_bidx = wanted.bidx"
        " UNION"
        " SELECT i.id, i.kind, i.value, i.value_bidx, i.customer_id FROM customer_identities i"
        " WHERE i.kind = wanted.kind AND i.value = wanted.value) AS c",
        [k for k, _ in identities], [v for _, v in identities], indexes,
    )
    out = {}
    for r in rows:
        pair = by_index.get((r["kind"], r["value_bidx"])) if r["value_bidx"] is not None else (r["kind"], r["value"])
        if pair is not None:
            out[pair] = r["customer_id"]
    return out


#: the identities' insert: ``sealed``'s five arrays, then the owner (``$6``); also the first part
#: of a new customer's insert (``customers.repository.insert_with_identities``).
#: ``ON CONFLICT DO NOTHING`` waits for a concurrent uncommitted insert of the same (kind, blind
#: index) and then skips it, so a pair missing from what it returns is someone else's now.
ADD = ("INSERT INTO customer_identities (kind, value_enc, value_bidx, phone_key, email_local, customer_id) "
       "SELECT kind, enc, bidx, pk, el, $6 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) "
       "AS u(kind, enc, bidx, pk, el) ON CONFLICT DO NOTHING RETURNING kind, value_bidx")


def sealed(identities: list[Pair]) -> tuple[list[list[str | None]], dict[tuple[str, str], Pair]]:
    """The five arrays of ``ADD``'s parameters (values sealed), and each pair by the (kind, blind
    index) the insert returns for it."""
    box = codec()
    rows = [box.identity_columns(k, v) for k, v in identities]
    by_index = {(k, s[1]): (k, v) for (k, v), s in zip(identities, rows)}
    return [[k for k, _ in identities], *([s[i] for s in rows] for i in range(4))], by_index


async def add_identities(conn: Any, *, customer_id: uuid.UUID, identities: list[Pair]) -> list[Pair]:
    """Insert identities for a customer; returns those actually inserted (a missing pair means
    someone else owns it now)."""
    if not identities:
        return []
    arrays, by_index = sealed(identities)
    rows = await conn.fetch(ADD, *arrays, customer_id)
    return [by_index[(r["kind"], r["value_bidx"])] for r in rows]


async def identities_of(conn: Any, customer_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """Each customer's identities (id, kind, value in plaintext), oldest first."""
    out: dict[uuid.UUID, list[dict[str, Any]]] = {cid: [] for cid in customer_ids}
    if not customer_ids:
        return out
    rows = await conn.fetch(
        f"SELECT customer_id, {READ} FROM customer_identities WHERE customer_id = ANY($1::uuid[]) "
        "ORDER BY customer_id, created_at, kind, id",
        customer_ids,
    )
    box = codec()
    for r in rows:
        out[r["customer_id"]].append(box.identity(r))
    return out


async def delete_identity(conn: Any, *, customer_id: uuid.UUID, identity_id: uuid.UUID) -> dict[str, Any] | None:
    """Remove one identity of the customer (the caller holds the customer's row lock); the row, or None."""
    row = await conn.fetchrow(
        f"DELETE FROM customer_identities WHERE id = $1 AND customer_id = $2 RETURNING {READ}",
        identity_id, customer_id,
    )
    return None if row is None else codec().identity(row)
