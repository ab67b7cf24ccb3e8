"""Event handlers; each runs inside the consumer's transaction (with the inbox row), on its
bare asyncpg connection."""

from __future__ import annotations

from typing import Any

from helpdesk_common import events

from . import service


async def handle_ticket_created(conn: Any, event: events.TicketCreated) -> None:
    await service.resolve_requester(
        conn, ticket_id=event.data.ticket_id, requester=event.data.requester.model_dump(exclude_none=True)
    )


HANDLERS = {"ticket.created": handle_ticket_created}
