"""Event handlers; each runs inside the consumer's transaction (with the inbox row)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from helpdesk_common import events

from . import service


async def handle_ticket_created(conn: AsyncConnection, event: events.TicketCreated) -> None:
    await service.apply_first_response(
        conn, ticket_id=event.data.ticket_id, priority=event.data.priority, created_at=event.data.created_at
    )
