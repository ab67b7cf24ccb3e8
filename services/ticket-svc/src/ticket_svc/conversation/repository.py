"""All SQL of the conversation domain (bare asyncpg)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

_COLUMNS = ("id, ticket_id, author_kind, author_id, public, body_text, body_html, channel, external_id, "
            "email_message_id, attachments, metadata, created_at, delivery_status, delivery_reason, "
            "delivery_attempts, delivery_updated_at")


def insert_message_sql(first: int, *, ticket_id: str | None = None) -> str:
    """The message INSERT with its parameters numbered from ``first`` (``message_args`` gives
    them in order); ``ticket_id``: an SQL expression for the ticket instead of a parameter (the
    ticket's own INSERT in the same statement, ``tickets.repository.insert_ticket``)."""
    numbers = iter(range(first, first + 17))
    values = [ticket_id if i == 1 and ticket_id is not None else f"${next(numbers)}" for i in range(17)]
    return ("INSERT INTO messages (id, ticket_id, author_kind, author_id, public, body_text, body_html, channel, "
            "external_id, email_message_id, attachments, metadata, created_at, delivery_status, delivery_reason, "
            f"delivery_attempts, delivery_updated_at) VALUES ({', '.join(values)})")


def message_args(v: dict[str, Any], *, with_ticket: bool = True) -> list[Any]:
    args = [v["id"], v["ticket_id"], v["author_kind"], v.get("author_id"), v["public"], v["body_text"],
            v.get("body_html"), v.get("channel"), v.get("external_id"), v.get("email_message_id"),
            v.get("attachments", []), v.get("metadata", {}), v["created_at"], v.get("delivery_status"),
            v.get("delivery_reason"), 0 if v.get("delivery_status") else None,
            v["created_at"] if v.get("delivery_status") else None]
    if not with_ticket:
        del args[1]
    return args


_INSERT_MESSAGE = insert_message_sql(1) + f" RETURNING {_COLUMNS}"


async def insert_message(conn: Any, v: dict[str, Any]) -> Any:
    return await conn.fetchrow(_INSERT_MESSAGE, *message_args(v))


async def store_blobs(conn: Any, blobs: Sequence[tuple[str, bytes]]) -> None:
    if blobs:
        await conn.executemany(
            "INSERT INTO attachment_blobs (sha256, content, size) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            [(digest, content, len(content)) for digest, content in blobs],
        )


async def blob(conn: Any, sha256: str) -> bytes | None:
    return await conn.fetchval("SELECT content FROM attachment_blobs WHERE sha256 = $1", sha256)


async def list_messages(conn: Any, *, ticket_id: uuid.UUID, public_only: bool, limit: int,
                        after: tuple[datetime, uuid.UUID] | None) -> list[Any]:
    args: list[Any] = [ticket_id]
    where = ["ticket_id = $1"]
    if public_only:
        where.append("public")
    if after is not None:
        args += [after[0], after[1]]
        where.append(f"(created_at, id) > (${len(args) - 1}, ${len(args)})")
    args.append(limit)
    return await conn.fetch(
        f"SELECT {_COLUMNS} FROM messages WHERE {' AND '.join(where)} ORDER BY created_at, id LIMIT ${len(args)}",
        *args,
    )


async def find_attachment(conn: Any, *, ticket_id: uuid.UUID, attachment_id: str) -> Any:
    return await conn.fetchrow(
        "SELECT m.public, a AS attachment FROM messages m, jsonb_array_elements(m.attachments) a "
        "WHERE m.ticket_id = $1 AND a->>'id' = $2",
        ticket_id, attachment_id,
    )


async def move_messages(conn: Any, *, source_id: uuid.UUID, target_id: uuid.UUID) -> tuple[int, int]:
    """Move every message; returns (moved, of which public)."""
    row = await conn.fetchrow(
        "WITH moved AS (UPDATE messages SET ticket_id = $2 WHERE ticket_id = $1 RETURNING public) "
        "SELECT count(*), count(*) FILTER (WHERE public) FROM moved",
        source_id, target_id,
    )
    return int(row[0]), int(row[1])


# --- replies: the customer's side of the conversation, and what became of each delivery ----------

async def store_reply_route(conn: Any, *, ticket_id: uuid.UUID, channel: str, route: dict[str, Any]) -> None:
    """Write the ticket's route for ``channel`` (sealed: ``pii.codec``; the merge with the older
    route happens in ``service.remember_reply_route``, which read it locked)."""
    await conn.execute(
        "INSERT INTO reply_routes (ticket_id, channel, route, updated_at) VALUES ($1, $2, $3, now()) "
        "ON CONFLICT (ticket_id, channel) DO UPDATE SET route = EXCLUDED.route, updated_at = EXCLUDED.updated_at",
        ticket_id, channel, route,
    )


async def copy_reply_routes(conn: Any, *, source_id: uuid.UUID, target_id: uuid.UUID) -> None:
    """A follow-up ticket answers where its closed predecessor did."""
    await conn.execute(
        "INSERT INTO reply_routes (ticket_id, channel, route, updated_at) "
        "SELECT $2, channel, route, updated_at FROM reply_routes WHERE ticket_id = $1 ON CONFLICT DO NOTHING",
        source_id, target_id,
    )


async def reply_route(conn: Any, *, ticket_id: uuid.UUID, channel: str, lock: bool = False) -> Any:
    """The stored route (sealed, or a plaintext object from before 0019), or None."""
    return await conn.fetchval("SELECT route FROM reply_routes WHERE ticket_id = $1 AND channel = $2"
                               + (" FOR UPDATE" if lock else ""), ticket_id, channel)


async def email_thread(conn: Any, *, ticket_id: uuid.UUID, limit: int) -> list[Any]:
    """The ticket's newest public e-mail ids (customer mails and our replies), newest first, with
    the addresses a customer mail was sent to (our support address is among them). Mails
    without a Message-ID got a synthetic one at intake: never a threading reference."""
    return await conn.fetch(
        "SELECT email_message_id, author_kind, "
        # the metadata's ``to`` (written before 0021) or its sealed personal entries: pii.codec opens them
        "CASE WHEN author_kind = 'customer' THEN jsonb_strip_nulls(jsonb_build_object("
        "'to', metadata->'to', 'personal', metadata->'personal')) END AS sent_to FROM messages "
        "WHERE ticket_id = $1 AND public AND email_message_id IS NOT NULL "
        "AND NOT coalesce((metadata->>'synthetic_message_id')::boolean, false) "
        "ORDER BY created_at DESC, id DESC LIMIT $2",
        ticket_id, limit,
    )


async def apply_delivery(conn: Any, *, message_id: uuid.UUID, status: str, reason: str | None, attempts: int,
                         at: datetime) -> bool:
    """Record notify-svc's report on a reply unless it is stale; True when it changed the row.

    Stale: older than the state shown (``at`` before ``delivery_updated_at``), or, at the same
    instant, a ``queued`` report over a final state. A final state can be replaced by a newer
    report (a delivery retried by hand). Until notify-svc's first report (``delivery_attempts``
    still 0, ``queued`` as ticket-svc set it) any report applies: ``delivery_updated_at`` is then
    ticket-svc's own clock, which must not make notify-svc's first answer look old."""
    result = await conn.execute(
        "UPDATE messages SET delivery_status = $2, delivery_reason = $3, delivery_attempts = $4, "
        "delivery_updated_at = $5 WHERE id = $1 AND delivery_status IS NOT NULL "
        "AND ((delivery_status = 'queued' AND delivery_attempts = 0) "
        "     OR delivery_updated_at < $5 "
        "     OR (delivery_updated_at = $5 AND NOT ($2 = 'queued' AND delivery_status <> 'queued')))",
        message_id, status, reason, attempts, at,
    )
    return result.endswith(" 1")
