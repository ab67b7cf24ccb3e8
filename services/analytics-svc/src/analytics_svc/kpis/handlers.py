from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import Histogram
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from helpdesk_common import events

from . import repository

PROPAGATION = Histogram(
    "event_propagation_seconds",
    "ticket.created event time to folded into analytics",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)


async def handle_ticket_created(conn: AsyncConnection, event: events.TicketCreated) -> None:
    d = event.data
    await repository.upsert_fact(
        conn, d.ticket_id, created_at=d.created_at, priority=d.priority, status=d.status,
        channel=d.channel, ingested_at=text("clock_timestamp()"),
    )
    PROPAGATION.observe(max(0.0, (datetime.now(UTC) - d.created_at).total_seconds()))


async def handle_customer_linked(conn: AsyncConnection, event: events.TicketCustomerLinked) -> None:
    await repository.upsert_fact(conn, event.data.ticket_id, customer_id=event.data.customer_id)


async def handle_sla_applied(conn: AsyncConnection, event: events.SlaApplied) -> None:
    if event.data.metric == "first_response":
        await repository.upsert_fact(conn, event.data.ticket_id, first_response_due_at=event.data.due_at)


HANDLERS = {
    "ticket.created": handle_ticket_created,
    "ticket.customer_linked": handle_customer_linked,
    "sla.applied": handle_sla_applied,
}
