"""All SQL of the conversation domain (bare asyncpg)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

_COLUMNS = ("id, ticket_id, author_kind, author_id, public, body_text, body_html, channel, external_id, "
            "email_message_id, attachments, metadata, created_at")


async def insert_message(conn: Any, v: dict[str, Any]) -> Any:
    return await conn.fetchrow(
        "INSERT INTO messages (id, ticket_id, author_kind, author_id, public, body_text, body_html, channel, "
        "external_id, email_message_id, attachments, metadata, created_at) "
        f"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING {_COLUMNS}",
        v["id"], v["ticket_id"], v["author_kind"], v.get("author_id"), v["public"], v["body_text"],
        v.get("body_html"), v.get("channel"), v.get("external_id"), v.get("email_message_id"),
        v.get("attachments", []), v.get("metadata", {}), v["created_at"],
    )


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
