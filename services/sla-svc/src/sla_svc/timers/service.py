"""SLA rules on the caller's connection; never commits (the consumer owns the transaction)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from helpdesk_common import events
from helpdesk_common.outbox import enqueue

from ..db import outbox
from . import policies, repository

SOURCE = "sla-svc"


async def apply_first_response(
    conn: AsyncConnection, *, ticket_id: uuid.UUID, priority: str, created_at: datetime
) -> bool:
    """Start the ticket's first-response timer and emit sla.applied; False if it already exists."""
    timer = policies.first_response_timer(priority=priority, created_at=created_at)
    if not await repository.insert_timer(conn, ticket_id=ticket_id, timer=timer):
        return False
    await enqueue(
        conn,
        outbox,
        events.SlaApplied(
            source=SOURCE,
            subject=str(ticket_id),  # keyed by the ticket: ordered with the ticket's events
            data=events.SlaAppliedData(
                ticket_id=ticket_id, metric=timer.metric, policy=timer.policy, target_minutes=timer.target_minutes,
                started_at=timer.started_at, due_at=timer.due_at,
            ),
        ),
    )
    return True


async def timers_of(conn: AsyncConnection, *, ticket_id: uuid.UUID) -> dict[str, Any]:
    rows = await repository.timers_of(conn, ticket_id)
    return {
        "items": [
            {"metric": r.metric, "policy": r.policy, "target_minutes": r.target_minutes,
             "started_at": r.started_at, "due_at": r.due_at, "status": r.status}
            for r in rows
        ]
    }
