"""Fold events into ticket_facts and survey_answers; each handler runs inside the consumer's transaction, on its
bare asyncpg connection (``ticket_facts``' upserts are written at its end: ``batch``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prometheus_client import Histogram

from helpdesk_common import events

from . import batch, repository

EVENT_PROPAGATION = Histogram(
    "event_propagation_seconds",
    "From a ticket's created_at (event data) to its ticket.created being folded into analytics",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)


async def handle_ticket_created(conn: Any, event: events.TicketCreated) -> None:
    d = event.data
    await batch.created(conn, (d.ticket_id, d.created_at, d.priority, d.status, d.channel, d.type))
    EVENT_PROPAGATION.observe(max(0.0, (datetime.now(UTC) - d.created_at).total_seconds()))


async def handle_ticket_updated(conn: Any, event: events.TicketUpdated) -> None:
    """Only a change of type matters here (the steps' figures are per ticket type)."""
    change = event.data.changes.get("type")
    if change is not None:
        await batch.partial(conn, event.data.ticket_id, "ticket_type", change.get("after"))


async def handle_customer_linked(conn: Any, event: events.TicketCustomerLinked) -> None:
    await batch.partial(conn, event.data.ticket_id, "customer_id", event.data.customer_id)


async def handle_sla_applied(conn: Any, event: events.SlaApplied) -> None:
    if event.data.metric == "first_response":
        await batch.partial(conn, event.data.ticket_id, "first_response_due_at", event.data.due_at)


async def handle_status_changed(conn: Any, event: events.TicketStatusChanged) -> None:
    d = event.data
    await repository.upsert_status(conn, ticket_id=d.ticket_id, status=d.to_status, version=d.version or 0)


async def handle_message_added(conn: Any, event: events.TicketMessageAdded) -> None:
    if event.data.first_response:
        await batch.partial(conn, event.data.ticket_id, "first_response_at", event.data.created_at)


async def handle_survey_answered(conn: Any, event: events.SurveyAnswered) -> None:
    # the comment is deliberately dropped: the figures need the rating or score only
    d = event.data
    await repository.insert_survey_answer(
        conn, survey_id=d.survey_id, kind=d.kind, customer_id=d.customer_id, ticket_id=d.ticket_id,
        rating=d.rating, score=d.score, answered_at=d.at,
    )
