"""The only place with SQL for ticket-svc's erasure and export (bare asyncpg)."""

from __future__ import annotations

import uuid
from typing import Any

from helpdesk_common import erasure


async def identities(conn: Any, customer_id: uuid.UUID) -> list[Any]:
    """The customer's projection rows (``value_enc``, or a plaintext ``value`` before 0018)."""
    return await conn.fetch("SELECT kind, value, value_enc FROM customer_identity_projection WHERE customer_id = $1",
                            customer_id)


async def ticket_ids(conn: Any, *, customer_id: uuid.UUID, indexes: list[str],
                     identities: list[tuple[str, str]], conversations: list[str]) -> list[uuid.UUID]:
    """The person's tickets: linked to the customer, or raised by one of its identities (any
    identity of the requester through ``requester_bidx``; a row written before 0018 by its
    plaintext primary identity), or in one of its WeChat / WeCom conversations (the stored keys
    ``codec.person_conversations`` gives, and the plaintext ones of rows from before 0019)."""
    rows = await conn.fetch(
        "SELECT id FROM tickets WHERE customer_id = $1 OR requester_bidx && $4::text[] "
        "OR conversation_key = ANY($5::text[]) "
        "OR (requester_identity_kind, requester_identity_value) IN ("
        "SELECT k, v FROM unnest($2::text[], $3::text[]) AS i(k, v))",
        customer_id, [k for k, _ in identities], [v for _, v in identities], indexes, conversations)
    return [r["id"] for r in rows]


async def requesters(conn: Any, ids: list[uuid.UUID]) -> list[Any]:
    return await conn.fetch("SELECT requester, requester_identity_kind, requester_identity_value FROM tickets "
                            "WHERE id = ANY($1::uuid[])", ids)


async def export(conn: Any, ids: list[uuid.UUID]) -> dict[str, list[Any]]:
    tickets = await conn.fetch(
        "SELECT id, number, subject, description, status, priority, type, channel, tags, custom_fields, requester, "
        "cc, language, created_at, updated_at, solved_at, closed_at, csat_rating, csat_comment FROM tickets "
        "WHERE id = ANY($1::uuid[]) ORDER BY created_at", ids)
    messages = await conn.fetch(
        "SELECT id, ticket_id, author_kind, public, body_text, body_html, channel, attachments, created_at "
        "FROM messages WHERE ticket_id = ANY($1::uuid[]) AND (public OR author_kind = 'customer') "
        "ORDER BY created_at, id", ids)
    return {"tickets": [dict(r) for r in tickets], "messages": [dict(r) for r in messages]}


async def erase_tickets(conn: Any, *, ids: list[uuid.UUID], customer_id: uuid.UUID, found: list[str]) -> dict[str, int]:
    """The person's own tickets: shells and metrics kept, their words and files gone."""
    counts: dict[str, int] = {}

    async def run(name: str, sql: str, *args: Any) -> None:
        status = await conn.execute(sql, *args)
        counts[name] = counts.get(name, 0) + int(status.split()[-1])

    if ids:
        # customer-authored text: all of it (subject and description are the requester's words)
        await run("tickets",
                  "UPDATE tickets SET subject = $2, description = '', requester = $3::jsonb, "
                  "requester_identity_value = NULL, requester_identity_bidx = NULL, requester_bidx = '{}', "
                  "customer_id = COALESCE(customer_id, $4), csat_comment = NULL, search = ''::tsvector, "
                  # a WeChat / WeCom conversation key names (or indexes) the person: no thread continues
                  "conversation_key = CASE WHEN conversation_key ~ '^(wechat|wecom):' THEN NULL "
                  "ELSE conversation_key END "
                  "WHERE id = ANY($1::uuid[]) AND (subject <> $2 OR description <> '' "
                  "OR conversation_key ~ '^(wechat|wecom):' "
                  "OR requester_identity_value IS NOT NULL OR requester_identity_bidx IS NOT NULL "
                  "OR requester_bidx <> '{}' OR csat_comment IS NOT NULL OR requester <> $3::jsonb)",
                  ids, erasure.REDACTED, {"name": erasure.ERASED_NAME}, customer_id)
        # files the customer sent: their rows (message metadata) now, blobs below when no one else refers
        files = await conn.fetch(
            "SELECT DISTINCT a->>'sha256' AS sha256 FROM messages m, jsonb_array_elements(m.attachments) a "
            "WHERE m.ticket_id = ANY($1::uuid[]) AND m.author_kind = 'customer'", ids)
        # the channel's id of a message may name its sender (a WeChat message without a MsgId was
        # known by <openid>:<CreateTime> before delivery ids were indexed; an e-mail Message-ID
        # may carry the address): gone with the rest, and so are the deliveries' dedupe rows
        await run("messages",
                  "UPDATE messages SET body_text = $2, body_html = NULL, attachments = '[]', metadata = '{}', "
                  "author_id = NULL, email_message_id = NULL, external_id = NULL "
                  "WHERE ticket_id = ANY($1::uuid[]) AND author_kind = 'customer' "
                  "AND (body_text <> $2 OR body_html IS NOT NULL OR attachments <> '[]' OR metadata <> '{}' "
                  "OR author_id IS NOT NULL OR external_id IS NOT NULL)", ids, erasure.REDACTED)
        await run("channel_deliveries", "DELETE FROM channel_deliveries WHERE ticket_id = ANY($1::uuid[])", ids)
        shas = [r["sha256"] for r in files if r["sha256"]]
        if shas:
            await run("attachment_blobs",
                      "DELETE FROM attachment_blobs b WHERE b.sha256 = ANY($1::text[]) AND NOT EXISTS ("
                      "SELECT 1 FROM messages m, jsonb_array_elements(m.attachments) a "
                      "WHERE a->>'sha256' = b.sha256)", shas)
        await run("reply_routes", "DELETE FROM reply_routes WHERE ticket_id = ANY($1::uuid[])", ids)
    await run("identity_projection", "DELETE FROM customer_identity_projection WHERE customer_id = $1", customer_id)
    return counts


#: columns sealed at rest (pii.codec) that may mention someone else than their ticket's requester,
#: by name: (table, column, which rows hold a sealed value). SQL cannot look inside them, so the
#: erasure reads them in batches and opens them (pii.codec has no index of their contents)
SEALED = {
    "tickets.cc": ("tickets", "cc", "jsonb_typeof(cc) = 'object'"),
    "tickets.csat_comment": ("tickets", "csat_comment", "csat_comment ~ '^v1[.][^.]+[.][A-Za-z0-9_-]+$'"),
    "messages.metadata": ("messages", "metadata", "metadata ? 'personal'"),
}


async def sealed_batch(conn: Any, name: str, *, after: uuid.UUID | None, limit: int) -> list[Any]:
    """The next ``limit`` rows after ``after`` (by id) holding a sealed ``name``: (id, value)."""
    table, column, holds = SEALED[name]
    return await conn.fetch(
        f"SELECT id, {column} AS value FROM {table} WHERE {holds} AND ($1::uuid IS NULL OR id > $1) "
        "ORDER BY id LIMIT $2", after, limit)


async def store_sealed(conn: Any, name: str, rows: list[tuple[uuid.UUID, Any]]) -> None:
    table, column, _ = SEALED[name]
    if rows:
        await conn.executemany(f"UPDATE {table} SET {column} = $2 WHERE id = $1", rows)


async def redact_mentions(conn: Any, *, found: list[str]) -> dict[str, int]:
    """Every other place that may mention the person: agents' text on any ticket, audits,
    addresses in copies, steps' parties, stored idempotent answers (the plaintext columns, and
    the CC lists, CSAT comments and message metadata written before they were sealed; the
    sealed ones: ``service.redact_sealed``)."""
    counts = {
        "tickets": await erasure.redact_rows(conn, table="tickets", key="id", found=found, columns={
            "subject": "text", "description": "text", "custom_fields": "json", "cc": "drop[]",
            "followers": "drop[]", "requester": "json", "search": "tsvector", "csat_comment": "text",
            "conversation_key": "text"}),
        "messages": await erasure.redact_rows(conn, table="messages", key="id", found=found, columns={
            "body_text": "text", "body_html": "text", "author_id": "text", "metadata": "json",
            "attachments": "json", "email_message_id": "text"}),
        "ticket_audit": await erasure.redact_rows(conn, table="ticket_audit", key="id", found=found,
                                                  columns={"changes": "json", "actor": "text"}),
        "ticket_steps": await erasure.redact_rows(conn, table="ticket_steps", key="id", found=found,
                                                  columns={"parties": "json", "outcome": "text", "state": "json"}),
    }
    status = await conn.execute(
        "DELETE FROM idempotency_keys WHERE response IS NOT NULL AND EXISTS (SELECT 1 FROM unnest($1::text[]) "
        "t(term) WHERE position(lower(t.term) IN lower(response::text)) > 0)", found)
    counts["idempotency_keys"] = int(status.split()[-1])
    return counts
