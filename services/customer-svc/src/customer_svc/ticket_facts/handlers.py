"""Event handlers of the ticket projection; each runs inside the consumer's transaction (with
the inbox row, which makes a redelivered event a no-op), on its bare asyncpg connection."""

from __future__ import annotations

from typing import Any

from helpdesk_common import events

from . import service


async def handle_customer_linked(conn: Any, event: events.TicketCustomerLinked) -> None:
    await service.customer_linked(conn, event.data, at=event.time)


async def handle_status_changed(conn: Any, event: events.TicketStatusChanged) -> None:
    await service.status_changed(conn, event)


async def handle_message_added(conn: Any, event: events.TicketMessageAdded) -> None:
    await service.message_added(conn, event.data)


async def handle_updated(conn: Any, event: events.TicketUpdated) -> None:
    await service.updated(conn, event.data, at=event.time)


async def handle_assigned(conn: Any, event: events.TicketAssigned) -> None:
    await service.assigned(conn, event.data)


async def handle_merged(conn: Any, event: events.TicketMerged) -> None:
    await service.merged(conn, event.data, at=event.time)


async def handle_sla_breached(conn: Any, event: events.SlaBreached) -> None:
    await service.sla_breached(conn, event.data, at=event.time)


#: ``ticket.created`` is projected by requester resolution's handler (customers/handlers.py),
#: which resolves the customer first and writes the row with it
HANDLERS = {
    "ticket.customer_linked": handle_customer_linked,
    "ticket.status_changed": handle_status_changed,
    "ticket.message_added": handle_message_added,
    "ticket.updated": handle_updated,
    "ticket.assigned": handle_assigned,
    "ticket.merged": handle_merged,
    "sla.breached": handle_sla_breached,
}
