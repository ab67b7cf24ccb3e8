"""Consumer handlers: ticket and SLA events into ``stream_events``, then NOTIFY.

Runs inside the inbox consumer's transaction (helpdesk_common.consumer, on a bare asyncpg
connection: ``ConsumerSpec(raw=True)``), so a redelivered
event has no second row; the NOTIFY is delivered by PostgreSQL only when that transaction
commits, so a woken stream always finds the row. A fetched batch's rows are collected by the
handlers and written at the end of its transaction (``StreamBatch.flush``): one statement per
batch (the append lock, the rows and the NOTIFY) instead of three statements per event.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from helpdesk_common.consumer import Handler

from ..config import Settings
from . import repository

#: what the stream carries (docs/stream.md); every one has ticket_id, team_id, assignee_id. The
#: process steps' events let an approver's queue and a ticket's step show change live; never
#: ticket.confirmation_requested, whose link is the customer's bearer capability
STREAM_TYPES = (
    "ticket.created", "ticket.assigned", "ticket.status_changed", "ticket.updated", "ticket.message_added",
    "ticket.merged", "sla.warning", "sla.breached",
    "ticket.step_started", "ticket.step_completed", "ticket.approval_requested", "ticket.approval_decided",
    "ticket.customer_confirmed",
)


class StreamBatch:
    """The rows and ticket links a consumer transaction will write, per connection (as
    analytics-svc's fold batches: the consumer's ``on_begin`` / ``before_commit`` hooks bracket
    one transaction)."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self._pending: dict[int, list[dict[str, Any]]] = {}
        self._links: dict[int, list[tuple[Any, Any]]] = {}

    def add(self, conn: Any, row: dict[str, Any]) -> None:
        self._pending.setdefault(id(conn), []).append(row)

    def link(self, conn: Any, ticket_id: Any, customer_id: Any) -> None:
        """Whose the ticket is (``ticket.customer_linked``), for an erasure of that customer."""
        self._links.setdefault(id(conn), []).append((ticket_id, customer_id))

    async def begin(self, conn: Any) -> None:
        """First in every consumer transaction: forget what a rolled-back one left pending."""
        self._pending.pop(id(conn), None)
        self._links.pop(id(conn), None)

    async def flush(self, conn: Any) -> None:
        """Last before the commit, and before an erasure deletes rows (so that none of the batch's
        earlier events escapes it): the pending rows, in event order, under the append lock, and
        the links, in the same statement."""
        rows = self._pending.pop(id(conn), None) or []
        links = self._links.pop(id(conn), None) or []
        if rows or links:
            await repository.append_many(conn, rows, links=links, channel=self.channel)

    def flushing_first(self, handler: Handler) -> Handler:
        """``handler`` after the rows collected so far are written (for the erasure handler)."""
        async def wrapped(conn: Any, event: Any) -> None:
            await self.flush(conn)
            await handler(conn, event)
        return wrapped


def make_handlers(settings: Settings, batch: StreamBatch) -> dict[str, Handler]:
    """The stream's handlers; they add rows to ``batch``, whose hooks the consumer runs."""
    retention = timedelta(seconds=settings.stream_retention_s)

    def recent(event: Any) -> datetime | None:
        """The event's time, or None past the retention: a replay from the start of the topics
        (a new consumer group, a rebuilt broker) must not resurface old events as live ones."""
        occurred_at = event.time if event.time.tzinfo is not None else event.time.replace(tzinfo=UTC)
        return None if occurred_at < datetime.now(UTC) - retention else occurred_at

    async def record(conn: Any, event: Any) -> None:
        occurred_at = recent(event)
        if occurred_at is None:
            return
        data = event.data
        batch.add(conn, dict(
            event_id=event.id, type=event.type, ticket_id=data.ticket_id,
            team_id=getattr(data, "team_id", None), assignee_id=getattr(data, "assignee_id", None),
            previous_team_id=getattr(data, "previous_team_id", None),
            previous_assignee_id=getattr(data, "previous_assignee_id", None),
            payload=data.model_dump_json(), occurred_at=occurred_at,
        ))

    async def link(conn: Any, event: Any) -> None:
        # not a stream event (it carries no change an agent sees), but the erasure of the
        # customer must find the ticket's rows, whose customer_id was null at intake
        if recent(event) is not None:
            batch.link(conn, event.data.ticket_id, event.data.customer_id)

    return {**{event_type: record for event_type in STREAM_TYPES}, "ticket.customer_linked": link}
