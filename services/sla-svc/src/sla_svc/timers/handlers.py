"""ticket.created → a first-response timer and sla.applied."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from helpdesk_common import events
from helpdesk_common.outbox import enqueue

from ..db import outbox
from . import policies, repository


async def handle_ticket_created(conn: AsyncConnection, event: events.TicketCreated) -> None:
    data = event.data
    target = policies.first_response_target(data.priority)
    due = policies.due_at(data.created_at, target)
    created = await repository.insert_timer(
        conn, ticket_id=data.ticket_id, metric="first_response", policy=policies.DEFAULT_POLICY,
        target_minutes=target, started_at=data.created_at, due_at=due,
    )
    if created:
        await enqueue(
            conn,
            outbox,
            events.SlaApplied(
                source="sla-svc",
                subject=str(data.ticket_id),
                data=events.SlaAppliedData(
                    ticket_id=data.ticket_id, metric="first_response", policy=policies.DEFAULT_POLICY,
                    target_minutes=target, started_at=data.created_at, due_at=due,
                ),
            ),
        )


HANDLERS = {"ticket.created": handle_ticket_created}
