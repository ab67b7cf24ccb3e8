"""Event handlers; each runs inside the consumer's transaction (with the inbox row), on its bare
asyncpg connection. A redelivered event is stopped by the inbox; a second event for the same
message and channel by the deliveries' dedupe key."""

from __future__ import annotations

from typing import Any

from helpdesk_common import events

from . import dispatcher, service


def handlers(settings: Any) -> dict[str, Any]:
    """The handlers, bound to the app's settings (attempt budgets, destination keys)."""

    async def handle_reply_requested(conn: Any, event: events.TicketReplyRequested) -> None:
        created = await service.queue_reply(conn, event=event, settings=settings)
        if created is not None:
            dispatcher.wake_all()

    return {"ticket.reply_requested": handle_reply_requested}


def webhook_handlers() -> dict[str, Any]:
    """Every published event type (but those never offered to receivers) fans out to the
    subscriptions of its type."""

    async def fan_out(conn: Any, event: Any) -> None:
        if await service.queue_webhooks(conn, event=event):
            dispatcher.wake_all()

    return {event_type: fan_out for event_type in events.TOPIC_BY_TYPE
            if event_type not in service.WEBHOOK_EXCLUDED_TYPES}
