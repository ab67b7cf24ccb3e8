"""``privacy.erasure_requested`` in sla-svc's consumer transaction: the person's free-text custom
field values redacted, then acknowledged (a redelivery changes nothing more)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from helpdesk_common import erasure, events
from helpdesk_common.outbox import enqueue

from ..db import outbox
from . import repository

SOURCE = "sla-svc"


async def handle_erasure_requested(conn: AsyncConnection, event: events.PrivacyErasureRequested) -> None:
    data = event.data
    await repository.erase(conn, data.customer_id)
    await enqueue(conn, outbox, erasure.completed_event(request_id=data.request_id, customer_id=data.customer_id,
                                                        service=SOURCE))


PRIVACY_HANDLERS = {"privacy.erasure_requested": handle_erasure_requested}
