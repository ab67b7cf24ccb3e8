"""notify-svc's reports on replies (``deliveries.events``), run in the consumer's transaction on
its bare asyncpg connection: the inbox row and the status change commit together, so a
redelivered report has no second effect.

Only ``kind == "reply"`` with a ``message_id`` concerns messages; notifications and webhooks are
notify-svc's own business. A report older than what the message shows is ignored
(``repository.apply_delivery`` says what "older" means), so reports may arrive in any order."""

from __future__ import annotations

import logging
from typing import Any

from helpdesk_common import events

from . import repository

log = logging.getLogger(__name__)


async def handle_delivery(conn: Any, event: events.DeliverySucceeded | events.DeliveryDeferred
                          | events.DeliveryFailed) -> None:
    d = event.data
    if d.kind != "reply" or d.message_id is None:
        return
    status = d.status
    if event.type == "delivery.succeeded":
        status = "sent"
    elif event.type == "delivery.deferred":
        status = "queued"
    elif status not in ("failed", "undeliverable"):  # delivery.failed is final by contract
        status = "failed"
    applied = await repository.apply_delivery(conn, message_id=d.message_id, status=status, reason=d.reason,
                                              attempts=d.attempts, at=d.at)
    if not applied:
        log.debug("delivery report %s for message %s ignored (stale or not a reply)", event.id, d.message_id)


DELIVERY_HANDLERS = {
    "delivery.succeeded": handle_delivery,
    "delivery.deferred": handle_delivery,
    "delivery.failed": handle_delivery,
}
