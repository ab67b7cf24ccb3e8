"""``privacy.erasure_requested`` in its own consumer group (privacy.events is not a fold topic: a
rebuild replays the fold topics only), under the rebuild's shared swap lock."""

from __future__ import annotations

from typing import Any

from helpdesk_common import erasure, events
from helpdesk_common.outbox import enqueue_raw

from ..db import outbox

SOURCE = "analytics-svc"
GROUP = "analytics-svc.privacy"


async def handle_erasure_requested(conn: Any, event: events.PrivacyErasureRequested) -> None:
    data = event.data
    # nothing personal to anonymise (the package's docstring); the outbox holds no customer event
    await erasure.purge_published_outbox(conn, table=outbox.name, customer_id=data.customer_id, found=[])
    await enqueue_raw(conn, outbox, erasure.completed_event(request_id=data.request_id, customer_id=data.customer_id,
                                                            service=SOURCE))


PRIVACY_HANDLERS = {"privacy.erasure_requested": handle_erasure_requested}
