"""The only place with SQL for stored insight scores (bare asyncpg)."""

from __future__ import annotations

import uuid
from typing import Any


async def mark_dirty(conn: Any, customer_id: uuid.UUID) -> None:
    """Note that a customer's facts changed (an order, a ticket, a survey answer...), in the
    transaction of the change: the insight worker rescores them shortly after. Many changes to
    one customer coalesce into one row, so a burst costs one rescoring."""
    await conn.execute("INSERT INTO insight_dirty (customer_id) VALUES ($1) ON CONFLICT (customer_id) DO NOTHING",
                       customer_id)
