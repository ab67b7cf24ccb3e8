"""Consumer handlers: ticket and SLA events into ``stream_events``, then NOTIFY.

Runs inside the inbox consumer's transaction (helpdesk_common.consumer), so a redelivered
event has no second row; the NOTIFY is delivered by PostgreSQL only when that transaction
commits, so a woken stream always finds the row.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

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


def make_handlers(settings: Settings) -> dict[str, Handler]:
    retention = timedelta(seconds=settings.stream_retention_s)
    channel = settings.stream_notify_channel

    async def record(conn: AsyncConnection, event: Any) -> None:
        # a replay from the start of the topics (a new consumer group, a rebuilt broker) must
        # not resurface old events as live ones: nothing older than the retention is stored
        occurred_at = event.time if event.time.tzinfo is not None else event.time.replace(tzinfo=UTC)
        if occurred_at < datetime.now(UTC) - retention:
            return
        data = event.data
        await repository.lock_for_append(conn)
        await repository.append(
            conn, event_id=event.id, type=event.type, ticket_id=data.ticket_id,
            team_id=getattr(data, "team_id", None), assignee_id=getattr(data, "assignee_id", None),
            previous_team_id=getattr(data, "previous_team_id", None),
            previous_assignee_id=getattr(data, "previous_assignee_id", None),
            payload=data.model_dump(mode="json"), occurred_at=occurred_at,
        )
        await repository.notify(conn, channel)

    return {event_type: record for event_type in STREAM_TYPES}
