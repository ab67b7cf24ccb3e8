"""The only place with SQL for the re-encryption walk of ticket-svc's personal data (bare asyncpg)."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

#: a tickets row still to move: a plaintext requester or primary identity, another key's
#: ciphertext, or a WeChat / WeCom conversation key naming its sender (before 0019)
_TICKET_STALE = ("((NOT requester ? 'sealed' AND requester <> '{{}}') OR requester_identity_value IS NOT NULL "
                 "OR split_part(requester->>'sealed', '.', 2) <> {kid} "
                 "OR (conversation_key ~ '^(wechat|wecom):' AND conversation_key !~ '^(wechat|wecom):#'))")
#: a reply route still to move: a plaintext object (before 0019) or another key's ciphertext
_ROUTE_STALE = "(NOT route ? 'sealed' OR split_part(route->>'sealed', '.', 2) <> {kid})"
#: a projection row still to move: plaintext, no index yet, or another key's ciphertext
_IDENTITY_STALE = "(value IS NOT NULL OR value_bidx IS NULL OR split_part(value_enc, '.', 2) <> {kid})"
#: a ticket's CC list or CSAT comment still to move: plaintext (before 0021) or another key's
_TICKET_FIELDS_STALE = ("((jsonb_typeof(cc) = 'array' AND cc <> '[]') "
                        "OR (jsonb_typeof(cc) = 'object' AND split_part(cc->>'sealed', '.', 2) <> {kid}) "
                        "OR (csat_comment IS NOT NULL AND csat_comment !~ ('^v1[.]' || {kid} || '[.][A-Za-z0-9_-]+$')))")
#: a message whose personal metadata (``codec.PERSONAL_METADATA``) is plaintext or another key's
_MESSAGE_STALE = ("(metadata ?| array['to', 'cc', 'reply_to', 'transcript', 'recording_url', 'conversation_title'] "
                  "OR split_part(metadata->'personal'->>'sealed', '.', 2) <> {kid})")


async def tickets_to_seal(conn: Any, *, after: uuid.UUID | None, current_kid: str, limit: int) -> list[Any]:
    """Tickets whose requester is plaintext or under another key than ``current_kid``, by id,
    locked (SKIP LOCKED: the service and another run never wait on the walk)."""
    return await conn.fetch(
        "SELECT id, requester, conversation_key FROM tickets WHERE ($1::uuid IS NULL OR id > $1) "
        f"AND {_TICKET_STALE.format(kid='$2')} ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED",
        after, current_kid, limit)


async def store_tickets(conn: Any, rows: list[tuple[uuid.UUID, dict[str, Any]]]) -> None:
    """(id, ``codec.requester_columns`` and ``conversation_key``) for each row: the sealed requester
    and its indexes, the plaintext identity cleared, the conversation key in its stored form.
    ``updated_at`` and ``version`` stay: nothing a reader sees changed."""
    if rows:
        await conn.execute(
            "UPDATE tickets t SET requester = u.r::jsonb, requester_identity_kind = u.k, "
            "requester_identity_value = NULL, requester_identity_bidx = u.b, "
            "requester_bidx = string_to_array(u.bs, ','), "
            "conversation_key = u.ck "
            "FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) "
            "AS u(id, r, k, b, bs, ck) WHERE t.id = u.id",
            [r[0] for r in rows], [orjson.dumps(r[1]["requester"]).decode() for r in rows],
            [r[1]["requester_identity_kind"] for r in rows], [r[1]["requester_identity_bidx"] for r in rows],
            [",".join(r[1]["requester_bidx"]) for r in rows],  # hex indexes: a comma never occurs in one
            [r[1]["conversation_key"] for r in rows])


async def identities_to_seal(conn: Any, *, current_kid: str, limit: int) -> list[Any]:
    """Projection rows still to move, locked; each batch moves what it selects, so the next
    batch starts over (the table has no key to walk: ``at`` is the row's ctid, stable while locked)."""
    return await conn.fetch(
        "SELECT ctid::text AS at, kind, value, value_enc FROM customer_identity_projection "
        f"WHERE {_IDENTITY_STALE.format(kid='$1')} LIMIT $2 FOR UPDATE SKIP LOCKED",
        current_kid, limit)


async def store_identities(conn: Any, rows: list[tuple[str, str, str, str]]) -> None:
    """(ctid, kind, value_enc, value_bidx) for each row. A plaintext row whose identity already has
    an indexed row (written by the consumer since 0018) is the older copy: it goes."""
    if not rows:
        return
    ats, kinds, encs, bidxs = ([r[i] for r in rows] for i in range(4))
    await conn.execute(
        "DELETE FROM customer_identity_projection p USING unnest($1::text[], $2::text[], $3::text[]) AS u(at, kind, b) "
        "WHERE p.ctid = u.at::tid AND p.value_bidx IS NULL AND EXISTS (SELECT 1 FROM customer_identity_projection q "
        "WHERE q.kind = u.kind AND q.value_bidx = u.b)",
        ats, kinds, bidxs)
    await conn.execute(
        "UPDATE customer_identity_projection p SET value = NULL, value_enc = u.enc, value_bidx = u.b "
        "FROM unnest($1::text[], $2::text[], $3::text[]) AS u(at, enc, b) WHERE p.ctid = u.at::tid",
        ats, encs, bidxs)


async def routes_to_seal(conn: Any, *, after: tuple[uuid.UUID, str] | None, current_kid: str,
                         limit: int) -> list[Any]:
    """Reply routes in plaintext or under another key, by primary key, locked."""
    return await conn.fetch(
        "SELECT ticket_id, channel, route FROM reply_routes "
        "WHERE ($1::uuid IS NULL OR (ticket_id, channel) > ($1, $2)) "
        f"AND {_ROUTE_STALE.format(kid='$3')} ORDER BY ticket_id, channel LIMIT $4 FOR UPDATE SKIP LOCKED",
        after[0] if after else None, after[1] if after else "", current_kid, limit)


async def store_routes(conn: Any, rows: list[tuple[uuid.UUID, str, dict[str, str]]]) -> None:
    """(ticket_id, channel, sealed route) for each row; ``updated_at`` stays (the route did not change)."""
    if rows:
        await conn.execute(
            "UPDATE reply_routes r SET route = u.route::jsonb "
            "FROM unnest($1::uuid[], $2::text[], $3::text[]) AS u(t, c, route) "
            "WHERE r.ticket_id = u.t AND r.channel = u.c",
            [r[0] for r in rows], [r[1] for r in rows], [orjson.dumps(r[2]).decode() for r in rows])


async def ticket_fields_to_seal(conn: Any, *, after: uuid.UUID | None, current_kid: str,
                                limit: int) -> list[Any]:
    """Tickets whose CC list or CSAT comment is plaintext or under another key, by id, locked."""
    return await conn.fetch(
        "SELECT id, cc, csat_comment FROM tickets WHERE ($1::uuid IS NULL OR id > $1) "
        f"AND {_TICKET_FIELDS_STALE.format(kid='$2')} ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED",
        after, current_kid, limit)


async def store_ticket_fields(conn: Any, rows: list[tuple[uuid.UUID, Any, str | None]]) -> None:
    """(id, stored cc, stored csat_comment) for each row; ``updated_at`` and ``version`` stay."""
    if rows:
        await conn.execute(
            "UPDATE tickets t SET cc = u.cc::jsonb, csat_comment = u.c "
            "FROM unnest($1::uuid[], $2::text[], $3::text[]) AS u(id, cc, c) WHERE t.id = u.id",
            [r[0] for r in rows], [orjson.dumps(r[1]).decode() for r in rows], [r[2] for r in rows])


async def messages_to_seal(conn: Any, *, after: uuid.UUID | None, current_kid: str, limit: int) -> list[Any]:
    """Messages whose personal metadata is plaintext or under another key, by id, locked."""
    return await conn.fetch(
        "SELECT id, metadata FROM messages WHERE ($1::uuid IS NULL OR id > $1) "
        f"AND {_MESSAGE_STALE.format(kid='$2')} ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED",
        after, current_kid, limit)


async def store_messages(conn: Any, rows: list[tuple[uuid.UUID, dict[str, Any]]]) -> None:
    """(id, stored metadata) for each row."""
    if rows:
        await conn.execute(
            "UPDATE messages m SET metadata = u.m::jsonb FROM unnest($1::uuid[], $2::text[]) AS u(id, m) "
            "WHERE m.id = u.id",
            [r[0] for r in rows], [orjson.dumps(r[1]).decode() for r in rows])


async def remaining(conn: Any, *, current_kid: str) -> dict[str, int]:
    """What is left to re-encrypt (the command's report; a full scan of the tables)."""
    row = await conn.fetchrow(
        f"SELECT (SELECT count(*) FROM tickets WHERE {_TICKET_STALE.format(kid='$1')}) AS tickets, "
        f"(SELECT count(*) FROM customer_identity_projection WHERE {_IDENTITY_STALE.format(kid='$1')}) AS identities, "
        f"(SELECT count(*) FROM reply_routes WHERE {_ROUTE_STALE.format(kid='$1')}) AS reply_routes, "
        f"(SELECT count(*) FROM tickets WHERE {_TICKET_FIELDS_STALE.format(kid='$1')}) AS ticket_fields, "
        f"(SELECT count(*) FROM messages WHERE {_MESSAGE_STALE.format(kid='$1')}) AS messages",
        current_kid)
    return dict(row)


# --- the index-key rotation (pii/reindex.py) -----------------------------------------------------
# Every blind index ticket-svc stores, read and rewritten under a new TICKET_PII_INDEX_KEY; no
# ciphertext is touched. Rows are locked FOR UPDATE (not SKIP LOCKED: a row the service holds for a
# moment is waited for, not left under the old key).

#: a tickets row that holds a blind index: the requester's, or a WeChat / WeCom conversation key's
_TICKET_INDEXED = ("(requester_identity_bidx IS NOT NULL OR requester_bidx <> '{}' "
                   "OR conversation_key ~ '^(wechat|wecom):#')")


async def tickets_to_reindex(conn: Any, *, after: uuid.UUID | None, limit: int) -> list[Any]:
    """Tickets holding a blind index after ``after``, by id, locked for the batch's transaction."""
    return await conn.fetch(
        "SELECT id, requester, requester_identity_bidx, requester_bidx, conversation_key FROM tickets "
        f"WHERE ($1::uuid IS NULL OR id > $1) AND {_TICKET_INDEXED} ORDER BY id LIMIT $2 FOR UPDATE",
        after, limit)


async def store_ticket_indexes(conn: Any, rows: list[tuple[uuid.UUID, str | None, list[str], str | None]]) -> None:
    """(id, requester_identity_bidx, requester_bidx, conversation_key) for each row. ``updated_at``
    and ``version`` stay; the trigger of 0017 gives the row a new ``change_xid``."""
    if rows:
        await conn.execute(
            "UPDATE tickets t SET requester_identity_bidx = u.b, requester_bidx = string_to_array(u.bs, ','), "
            "conversation_key = u.ck "
            "FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS u(id, b, bs, ck) WHERE t.id = u.id",
            [r[0] for r in rows], [r[1] for r in rows],
            [",".join(r[2]) for r in rows],  # hex indexes: a comma never occurs in one
            [r[3] for r in rows])


async def customers_after(conn: Any, *, after: uuid.UUID | None, limit: int) -> list[uuid.UUID]:
    """The next ``limit`` customers of the identity projection after ``after``: the projection has
    no key of its own, and ``customer_id`` (indexed) is the one column the rotation never changes."""
    return [r["customer_id"] for r in await conn.fetch(
        "SELECT DISTINCT customer_id FROM customer_identity_projection WHERE ($1::uuid IS NULL OR customer_id > $1) "
        "ORDER BY customer_id LIMIT $2", after, limit)]


async def identities_to_reindex(conn: Any, customer_ids: list[uuid.UUID]) -> list[Any]:
    """These customers' indexed projection rows, locked for the batch's transaction (``at`` is the
    row's ctid, stable while locked)."""
    return await conn.fetch(
        "SELECT ctid::text AS at, kind, value_enc, value_bidx, customer_id, updated_at "
        "FROM customer_identity_projection WHERE customer_id = ANY($1::uuid[]) AND value_enc IS NOT NULL AND value_bidx IS NOT NULL FOR UPDATE",
        customer_ids)


async def store_identity_indexes(conn: Any, rows: list[tuple[str, str, str, Any]]) -> int:
    """(ctid, kind, new value_bidx, updated_at) for each row; returns how many duplicates went.

    With the service running, one identity can be under both keys: moved by this walk, then
    written again by a consumer still on the old key, or written under the new key by a replica
    already switched while the old row waited. Two rows of one identity cannot both stay
    (unique on ``(kind, value_bidx)``): the one updated last wins (its ``customer_id`` is the
    newer news), the other goes."""
    if not rows:
        return 0
    ats, kinds, bidxs, stamps = ([r[i] for r in rows] for i in range(4))
    older = await conn.execute(
        "DELETE FROM customer_identity_projection q USING unnest($1::text[], $2::text[], $3::timestamptz[]) "
        "AS u(kind, b, ts) WHERE q.kind = u.kind AND q.value_bidx = u.b AND q.updated_at <= u.ts",
        kinds, bidxs, stamps)
    newer = await conn.execute(
        "DELETE FROM customer_identity_projection p USING unnest($1::text[], $2::text[], $3::text[]) AS u(at, kind, b) "
        "WHERE p.ctid = u.at::tid AND EXISTS (SELECT 1 FROM customer_identity_projection q "
        "WHERE q.kind = u.kind AND q.value_bidx = u.b)",
        ats, kinds, bidxs)
    await conn.execute(
        "UPDATE customer_identity_projection p SET value_bidx = u.b "
        "FROM unnest($1::text[], $2::text[]) AS u(at, b) WHERE p.ctid = u.at::tid",
        ats, bidxs)
    return int(older.split()[-1]) + int(newer.split()[-1])


async def not_indexed(conn: Any) -> dict[str, int]:
    """Rows holding an identity in plaintext (written before 0018 / 0019), which have no blind
    index to move: ``reencrypt`` first."""
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM tickets WHERE requester_identity_value IS NOT NULL "
        "OR (NOT requester ? 'sealed' AND requester ?| array['email', 'phone', 'wechat_openid', 'external_id']) "
        "OR (conversation_key ~ '^(wechat|wecom):' AND conversation_key !~ '^(wechat|wecom):#')) AS tickets, "
        "(SELECT count(*) FROM customer_identity_projection WHERE value_bidx IS NULL) AS identities")
    return dict(row)
