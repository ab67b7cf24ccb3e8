"""The only place with SQL for kb-svc's erasure and export (bare asyncpg). kb-svc knows a
customer only by id (``customer:<id>`` voters, suggestions shown to a signed-in customer)."""

from __future__ import annotations

import uuid
from typing import Any


async def export(conn: Any, customer_id: uuid.UUID) -> dict[str, list[Any]]:
    votes = await conn.fetch("SELECT article_id, locale, helpful, comment, created_at, updated_at FROM kb_article_votes "
                             "WHERE voter = $1", f"customer:{customer_id}")
    suggestions = await conn.fetch("SELECT id, channel, language, article_ids, outcome, created_at FROM kb_suggestions "
                                   "WHERE customer_id = $1", customer_id)
    return {"votes": [dict(r) for r in votes], "suggestions": [dict(r) for r in suggestions]}


async def erase(conn: Any, customer_id: uuid.UUID) -> dict[str, int]:
    """Votes keep counting (helpful or not) without their comments; suggestions keep their
    outcomes without the customer; stored answers of the customer's requests go."""
    counts = {}
    status = await conn.execute("UPDATE kb_article_votes SET comment = NULL WHERE voter = $1 AND comment IS NOT NULL",
                                f"customer:{customer_id}")
    counts["votes"] = int(status.split()[-1])
    status = await conn.execute("UPDATE kb_suggestions SET customer_id = NULL WHERE customer_id = $1", customer_id)
    counts["suggestions"] = int(status.split()[-1])
    status = await conn.execute("DELETE FROM idempotency_keys WHERE caller = $1", f"customer:{customer_id}")
    counts["idempotency_keys"] = int(status.split()[-1])
    return counts
