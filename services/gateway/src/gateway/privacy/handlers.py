"""``privacy.erasure_requested`` in the gateway's stream consumer transaction: forget the
person's stream rows, then acknowledge (a redelivery finds nothing and acknowledges again)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from helpdesk_common import erasure, events
from helpdesk_common.outbox import enqueue

from ..db import outbox
from . import repository

SOURCE = "gateway"


async def handle_erasure_requested(conn: AsyncConnection, event: events.PrivacyErasureRequested) -> None:
    data = event.data
    ticket_ids, found = [], set()
    for row in await repository.requesters(conn, data.customer_id):
        ticket_ids.append(row.ticket_id)
        requester: dict[str, Any] = row.requester or {}
        found |= set(erasure.needles(name=requester.get("name"), identities=[
            (k, requester.get(k)) for k in ("email", "phone", "wechat_openid", "external_id") if requester.get(k)]))
    await repository.forget(conn, ticket_ids=ticket_ids, found=sorted(found))
    await enqueue(conn, outbox, erasure.completed_event(request_id=data.request_id, customer_id=data.customer_id,
                                                        service=SOURCE))


PRIVACY_HANDLERS = {"privacy.erasure_requested": handle_erasure_requested}
