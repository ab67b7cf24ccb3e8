"""Event handlers of data subject requests, in customer-svc's consumer transaction."""

from __future__ import annotations

from typing import Any

from helpdesk_common import erasure, events
from helpdesk_common.outbox import enqueue_raw

from .settings import get_privacy_settings as get_settings
from ..db import outbox
from . import service


async def handle_erasure_requested(conn: Any, event: events.PrivacyErasureRequested) -> None:
    """customer-svc anonymises what it holds, then acknowledges like every other service (a
    redelivery finds nothing left to change and acknowledges again)."""
    data = event.data
    await service.erase_here(conn, customer_id=data.customer_id)
    await enqueue_raw(conn, outbox, erasure.completed_event(request_id=data.request_id, customer_id=data.customer_id,
                                                            service=service.SOURCE))


async def handle_erasure_completed(conn: Any, event: events.PrivacyErasureCompleted) -> None:
    settings = get_settings()
    await service.acknowledge(conn, request_id=event.data.request_id, service=event.data.service, at=event.data.at,
                              expected=tuple(settings.services), log_mode=settings.log_purge)


HANDLERS = {"privacy.erasure_requested": handle_erasure_requested,
            "privacy.erasure_completed": handle_erasure_completed}
