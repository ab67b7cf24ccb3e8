"""The confirmation request handler, run in notify-svc's one consumer's transaction."""

from __future__ import annotations

from typing import Any

from helpdesk_common import events

from ..deliveries import dispatcher
from . import service


def handlers(settings: Any) -> dict[str, Any]:
    async def handle_confirmation_requested(conn: Any, event: events.TicketConfirmationRequested) -> None:
        if await service.queue_request(conn, event=event, settings=settings) is not None:
            dispatcher.wake_all()

    return {"ticket.confirmation_requested": handle_confirmation_requested}
