"""All SQL of the visitor's read (bare asyncpg)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any


async def conversation_exists(conn: Any, conversation_key: str) -> bool:
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM tickets WHERE conversation_key = $1 AND conversation_key LIKE 'chat:%' "
        "AND deleted_at IS NULL)",
        conversation_key))


async def public_messages(conn: Any, *, conversation_key: str, after: tuple[datetime, uuid.UUID] | None,
                          limit: int) -> list[Any]:
    """The conversation's customer and agent messages a customer may read (``public``), over
    every ticket of the conversation (a closed one and its follow-up are one chat to the
    visitor), oldest first after ``after``. Internal notes and system messages are never read
    here, nor any column the visitor is not shown."""
    args: list[Any] = [conversation_key, limit]
    keyset = ""
    if after is not None:
        args += [after[0], after[1]]
        keyset = "AND (m.created_at, m.id) > ($3, $4) "
    return await conn.fetch(
        "SELECT m.id, m.author_kind, m.body_text, m.body_html, m.attachments, m.created_at, "
        "CASE WHEN m.author_kind = 'agent' THEN u.display_name END AS author_name "
        "FROM tickets t JOIN messages m ON m.ticket_id = t.id "
        "LEFT JOIN user_projection u ON u.id = m.author_id "
        "WHERE t.conversation_key = $1 AND t.conversation_key LIKE 'chat:%' AND t.deleted_at IS NULL "
        "AND m.public AND m.author_kind IN ('customer', 'agent') "
        f"{keyset}ORDER BY m.created_at, m.id LIMIT $2",
        *args,
    )
