"""Event handlers; each runs inside the consumer's transaction (with the inbox row), on its
bare asyncpg connection."""

from __future__ import annotations

from typing import Any

from helpdesk_common import events

from ..ticket_facts import service as ticket_facts
from . import service


async def handle_ticket_created(conn: Any, event: events.TicketCreated) -> None:
    """Resolve the requester, then project the ticket with its customer: one row written whole,
    where projecting first and linking afterwards wrote it twice; the resolution's events go in
    the projection's statement (a statement of their own before), and so does a new requester's
    customer with its identities and ``customer.created`` (a statement of its own before)."""
    emitted: list[Any] = []
    new: list[Any] = []
    resolved = await service.resolve_requester(
        conn, ticket_id=event.data.ticket_id, requester=event.data.requester.model_dump(exclude_none=True),
        link=False, emit=emitted, defer_new=new)
    inserted = await ticket_facts.ticket_created(conn, event.data, resolved=None if resolved is None else resolved[0],
                                                 announce=emitted, new_customer=new[0] if new else None)
    if new:
        service.confirm_new(new[0], inserted or [])


HANDLERS = {"ticket.created": handle_ticket_created}
