"""All SQL of intake: the per-channel delivery ledger that makes every intake exactly once."""

from __future__ import annotations

import uuid
from typing import Any


async def claim_delivery(conn: Any, *, channel: str, external_id: str) -> Any:
    """None if this delivery is new (and now claimed by our transaction), else the original.

    A concurrent duplicate blocks on the primary key until the first transaction ends; if
    that one rolled back, the duplicate claims the key itself.
    """
    claimed = await conn.fetchval(
        "INSERT INTO channel_deliveries (channel, external_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
        channel, external_id,
    )
    if claimed:
        return None
    return await conn.fetchrow(
        "SELECT ticket_id, message_id, created_ticket, ignored FROM channel_deliveries "
        "WHERE channel = $1 AND external_id = $2",
        channel, external_id,
    )


async def complete_delivery(conn: Any, *, channel: str, external_id: str, ticket_id: uuid.UUID,
                            message_id: uuid.UUID | None, created_ticket: bool) -> None:
    await conn.execute(
        "UPDATE channel_deliveries SET ticket_id = $3, message_id = $4, created_ticket = $5 "
        "WHERE channel = $1 AND external_id = $2",
        channel, external_id, ticket_id, message_id, created_ticket,
    )

