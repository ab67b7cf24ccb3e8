"""Event handlers; each runs inside the consumer's transaction (with the inbox row), on its bare
asyncpg connection. A redelivered event is stopped by the inbox; a second event for the same
message and channel by the deliveries' dedupe key."""

from __future__ import annotations

from typing import Any

from helpdesk_common import events

from . import repository, service


def handlers(settings: Any) -> dict[str, Any]:
    """The handlers, bound to the app's settings (attempt budgets, destination keys)."""

    async def handle_reply_requested(conn: Any, event: events.TicketReplyRequested) -> None:
        await service.queue_reply(conn, event=event, settings=settings)

    async def handle_webhook_requested(conn: Any, event: events.TicketWebhookRequested) -> None:
        await service.queue_requested_webhook(conn, event=event)

    return {"ticket.reply_requested": handle_reply_requested, "ticket.webhook_requested": handle_webhook_requested}


class WebhookRouting:
    """The webhook consumer's handlers, narrowed to the event types some enabled subscription
    wants. The consumer skips a type it has no handler for without parsing the record or writing
    an inbox row, so with few subscriptions notify-svc does almost nothing per event of the
    system instead of a transaction each.

    ``handlers`` is the very dict the consumer holds, changed in place (one synchronous
    clear-and-update: the consumer never sees it half-done). It starts with every type, so
    nothing is skipped before the first ``refresh`` has read the subscriptions; a subscription
    created since the last refresh (every ``NOTIFY_WEBHOOK_TYPES_REFRESH_S``) misses the events
    of that interval."""

    def __init__(self) -> None:
        async def fan_out(conn: Any, event: Any) -> None:
            await service.queue_webhooks(conn, event=event)

        self._all = {event_type: fan_out for event_type in events.TOPIC_BY_TYPE
                     if event_type not in service.WEBHOOK_EXCLUDED_TYPES}
        self.handlers: dict[str, Any] = dict(self._all)

    async def refresh(self, conn: Any) -> None:
        wanted = await repository.subscribed_event_types(conn)
        narrowed = {t: h for t, h in self._all.items() if t in wanted}
        self.handlers.clear()
        self.handlers.update(narrowed)
