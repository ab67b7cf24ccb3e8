"""The only place with SQL for the audit of unmasked reads and the re-encryption walk (bare asyncpg)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

#: ticket statuses in which the assignee no longer works the ticket
DONE_STATUSES = ["closed"]


async def worked_by(conn: Any, assignee_id: str, customer_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of ``customer_ids`` have a ticket assigned to ``assignee_id`` that is not closed
    (``ix_customer_tickets_customer_created``: a customer's tickets)."""
    if not customer_ids:
        return set()
    rows = await conn.fetch(
        "SELECT DISTINCT customer_id FROM customer_tickets WHERE customer_id = ANY($1::uuid[]) AND assignee_id = $2 "
        "AND merged_into IS NULL AND status <> ALL($3::text[])",
        customer_ids, assignee_id, DONE_STATUSES)
    return {r["customer_id"] for r in rows}


async def record(conn: Any, *, actor: str, actor_role: str | None, entries: list[tuple[uuid.UUID, list[str], str]],
                 purpose: str, route: str, request_id: str | None) -> None:
    """One audit row per (customer, fields, reason) in ``entries``, in one statement."""
    if not entries:
        return
    await conn.execute(
        "INSERT INTO pii_access_log (actor, actor_role, customer_id, fields, reason, purpose, route, request_id) "
        "SELECT $1, $2, e.customer_id, string_to_array(e.fields, ','), e.reason, $6, $7, $8 "
        "FROM unnest($3::uuid[], $4::text[], $5::text[]) AS e(customer_id, fields, reason)",
        actor, actor_role, [c for c, _, _ in entries], [",".join(f) for _, f, _ in entries],
        [r for _, _, r in entries], purpose, route, request_id)


_LOG_COLUMNS = "id, at, actor, actor_role, customer_id, fields, purpose, reason, route, request_id"


async def access_log(conn: Any, *, customer_id: uuid.UUID | None, actor: str | None, purpose: str | None,
                     since: datetime | None, before_id: int | None, limit: int) -> list[Any]:
    """Audit rows newest first (keyset on id), filtered by customer, actor, purpose, time."""
    return await conn.fetch(
        f"SELECT {_LOG_COLUMNS} FROM pii_access_log WHERE ($1::uuid IS NULL OR customer_id = $1) "
        "AND ($2::text IS NULL OR actor = $2) AND ($3::text IS NULL OR purpose = $3) "
        "AND ($4::timestamptz IS NULL OR at >= $4) AND ($5::bigint IS NULL OR id < $5) ORDER BY id DESC LIMIT $6",
        customer_id, actor, purpose, since, before_id, limit)


# --- the re-encryption walk (pii/reencrypt.py) ------------------------------------------------------


async def identities_to_seal(conn: Any, *, after: uuid.UUID | None, current_kid: str, limit: int) -> list[Any]:
    """Identity rows holding plaintext or a ciphertext under another key than ``current_kid``, by id,
    locked (SKIP LOCKED: two runs share the work)."""
    return await conn.fetch(
        "SELECT id, kind, value, value_enc FROM customer_identities "
        "WHERE ($1::uuid IS NULL OR id > $1) AND (value IS NOT NULL OR value_bidx IS NULL "
        "OR split_part(value_enc, '.', 2) <> $2) ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED",
        after, current_kid, limit)


async def store_identities(conn: Any, rows: list[tuple[uuid.UUID, str, str, str | None, str | None]]) -> None:
    """(id, value_enc, value_bidx, phone_key, email_local) for each row; the plaintext cleared."""
    if rows:
        await conn.execute(
            "UPDATE customer_identities c SET value = NULL, value_enc = u.enc, value_bidx = u.bidx, "
            "phone_key = u.pk, email_local = u.el "
            "FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[]) AS u(id, enc, bidx, pk, el) "
            "WHERE c.id = u.id",
            [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows],
            [r[4] for r in rows])


async def customers_to_seal(conn: Any, *, after: uuid.UUID | None, current_kid: str, limit: int) -> list[Any]:
    """Customer rows holding a plaintext name or notes, or ciphertext under another key."""
    return await conn.fetch(
        "SELECT id, name, name_enc, notes, notes_enc FROM customers "
        "WHERE ($1::uuid IS NULL OR id > $1) AND (name IS NOT NULL OR notes IS NOT NULL "
        "OR split_part(name_enc, '.', 2) <> $2 OR split_part(notes_enc, '.', 2) <> $2) "
        "ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED",
        after, current_kid, limit)


async def store_customers(conn: Any, rows: list[tuple[uuid.UUID, str | None, str | None, str, str | None]]) -> None:
    """(id, name_enc, name_key, search, notes_enc) for each row; the plaintext cleared."""
    if rows:
        await conn.execute(
            "UPDATE customers c SET name = NULL, notes = NULL, name_enc = u.ne, name_key = u.nk, "
            "search = u.s::tsvector, notes_enc = u.te "
            "FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[]) AS u(id, ne, nk, s, te) "
            "WHERE c.id = u.id",
            [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows],
            [r[4] for r in rows])


_MERGE_STALE = ("EXISTS (SELECT 1 FROM jsonb_array_elements(identities) e "
                "WHERE e ? 'value' OR split_part(e->>'value_enc', '.', 2) <> {kid})")


async def merges_to_seal(conn: Any, *, after: uuid.UUID | None, current_kid: str, limit: int) -> list[Any]:
    """Merge audit rows whose moved identities carry a plaintext ``value`` or another key's ciphertext."""
    return await conn.fetch(
        "SELECT id, identities FROM customer_merges WHERE ($1::uuid IS NULL OR id > $1) "
        f"AND {_MERGE_STALE.format(kid='$2')} ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED",
        after, current_kid, limit)


async def store_merge(conn: Any, merge_id: uuid.UUID, identities: list[dict[str, Any]]) -> None:
    await conn.execute("UPDATE customer_merges SET identities = $2 WHERE id = $1", merge_id, identities)


async def surveys_to_seal(conn: Any, *, after: uuid.UUID | None, current_kid: str, limit: int) -> list[Any]:
    """Surveys with a plaintext comment (answered before migration 0010) or one under another key."""
    return await conn.fetch(
        "SELECT id, comment, comment_enc FROM surveys WHERE ($1::uuid IS NULL OR id > $1) "
        "AND (comment IS NOT NULL OR split_part(comment_enc, '.', 2) <> $2) "
        "ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED",
        after, current_kid, limit)


async def store_surveys(conn: Any, rows: list[tuple[uuid.UUID, str | None]]) -> None:
    """(id, comment_enc) for each row; the plaintext cleared."""
    if rows:
        await conn.execute(
            "UPDATE surveys s SET comment = NULL, comment_enc = u.enc "
            "FROM unnest($1::uuid[], $2::text[]) AS u(id, enc) WHERE s.id = u.id",
            [r[0] for r in rows], [r[1] for r in rows])


async def remaining(conn: Any, *, current_kid: str) -> dict[str, int]:
    """What is left to re-encrypt (the command's report; a full scan of each table)."""
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM customer_identities WHERE value IS NOT NULL OR value_bidx IS NULL "
        "  OR split_part(value_enc, '.', 2) <> $1) AS identities, "
        "(SELECT count(*) FROM customers WHERE name IS NOT NULL OR notes IS NOT NULL "
        "  OR split_part(name_enc, '.', 2) <> $1 OR split_part(notes_enc, '.', 2) <> $1) AS customers, "
        f"(SELECT count(*) FROM customer_merges WHERE {_MERGE_STALE.format(kid='$1')}) AS merges, "
        "(SELECT count(*) FROM surveys WHERE comment IS NOT NULL OR split_part(comment_enc, '.', 2) <> $1) AS surveys",
        current_kid)
    return dict(row)


# --- the index-key rotation (pii/reindex.py) -----------------------------------------------------


async def identities_to_reindex(conn: Any, *, after: uuid.UUID | None, limit: int) -> list[Any]:
    """Encrypted identity rows after ``after``, by id, locked for the batch's transaction."""
    return await conn.fetch(
        "SELECT id, kind, value_enc, value_bidx, phone_key, email_local FROM customer_identities "
        "WHERE ($1::uuid IS NULL OR id > $1) AND value_enc IS NOT NULL ORDER BY id LIMIT $2 FOR UPDATE",
        after, limit)


async def store_identity_indexes(conn: Any, rows: list[tuple[uuid.UUID, str, str | None, str | None]]) -> None:
    """(id, value_bidx, phone_key, email_local) for each row; the ciphertext is not touched."""
    if rows:
        await conn.execute(
            "UPDATE customer_identities c SET value_bidx = u.bidx, phone_key = u.pk, email_local = u.el "
            "FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS u(id, bidx, pk, el) WHERE c.id = u.id",
            [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows])


async def customers_to_reindex(conn: Any, *, after: uuid.UUID | None, limit: int) -> list[Any]:
    """Customers with an encrypted name after ``after``, by id, locked for the batch's transaction."""
    return await conn.fetch(
        "SELECT id, name_enc, name_key FROM customers WHERE ($1::uuid IS NULL OR id > $1) AND name_enc IS NOT NULL "
        "ORDER BY id LIMIT $2 FOR UPDATE", after, limit)


async def store_customer_indexes(conn: Any, rows: list[tuple[uuid.UUID, str | None, str]]) -> None:
    """(id, name_key, search) for each row."""
    if rows:
        await conn.execute(
            "UPDATE customers c SET name_key = u.nk, search = u.s::tsvector "
            "FROM unnest($1::uuid[], $2::text[], $3::text[]) AS u(id, nk, s) WHERE c.id = u.id",
            [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])


async def not_indexed(conn: Any) -> dict[str, int]:
    """Rows still in plaintext (before migration 0008), which carry no blind index to rotate:
    ``reencrypt`` first."""
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM customer_identities WHERE value_enc IS NULL) AS identities, "
        "(SELECT count(*) FROM customers WHERE name IS NOT NULL) AS customers")
    return dict(row)
