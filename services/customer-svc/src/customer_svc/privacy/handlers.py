"""Event handlers of data subject requests, in customer-svc's consumer transaction."""

from __future__ import annotations

from typing import Any

from helpdesk_common import erasure, events

from .settings import get_privacy_settings as get_settings
from ..db import outbox
from . import service


async def _erase(conn: Any, customer_id: Any) -> None:
    """customer-svc anonymises what it holds, then acknowledges like every other service."""
    await service.erase_here(conn, customer_id=customer_id)


handle_erasure_requested = erasure.raw_erasure_handler(service=service.SOURCE, outbox=outbox, erase=_erase)


async def handle_erasure_completed(conn: Any, event: events.PrivacyErasureCompleted) -> None:
    settings = get_settings()
    await service.acknowledge(conn, request_id=event.data.request_id, service=event.data.service, at=event.data.at,
                              expected=tuple(settings.services), log_mode=settings.log_purge)


HANDLERS = {"privacy.erasure_requested": handle_erasure_requested,
            "privacy.erasure_completed": handle_erasure_completed}
