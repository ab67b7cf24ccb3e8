"""The only place with SQL for analytics-svc's part of an export (bare asyncpg)."""

from __future__ import annotations

import uuid
from typing import Any


async def export(conn: Any, customer_id: uuid.UUID) -> dict[str, list[Any]]:
    """The rows keyed to the customer: their tickets' metrics and their survey answers."""
    tickets = await conn.fetch(
        "SELECT ticket_id, number, created_at, status, first_reply_at, resolved_at, channel, ticket_type, priority, "
        "customer_tier, brand, tags FROM ticket_metrics WHERE customer_id = $1 ORDER BY created_at", customer_id)
    surveys = await conn.fetch("SELECT survey_id, kind, ticket_id, rating, score, answered_at FROM survey_answers "
                               "WHERE customer_id = $1 ORDER BY answered_at", customer_id)
    return {"ticket_metrics": [dict(r) for r in tickets], "survey_answers": [dict(r) for r in surveys]}
