"""``privacy.erasure_requested`` in kb-svc's consumer transaction: anonymise, then acknowledge
(a redelivery finds nothing left and acknowledges again)."""

from __future__ import annotations

from typing import Any

from helpdesk_common import erasure, events
from helpdesk_common.outbox import enqueue_raw

from ..db import outbox
from . import repository

SOURCE = "kb-svc"


async def handle_erasure_requested(conn: Any, event: events.PrivacyErasureRequested) -> None:
    data = event.data
    await repository.erase(conn, data.customer_id)
    await erasure.purge_published_outbox(conn, table=outbox.name, customer_id=data.customer_id, found=[])
    await enqueue_raw(conn, outbox, erasure.completed_event(request_id=data.request_id, customer_id=data.customer_id,
                                                            service=SOURCE))


PRIVACY_HANDLERS = {"privacy.erasure_requested": handle_erasure_requested}
