"""The confirmation request handler, run in notify-svc's one consumer's transaction."""

from __future__ import annotations

from typing import Any

from helpdesk_common import events

from . import service


def handlers(settings: Any) -> dict[str, Any]:
    async def handle_confirmation_requested(conn: Any, event: events.TicketConfirmationRequested) -> None:
        await service.queue_request(conn, event=event, settings=settings)

    return {"ticket.confirmation_requested": handle_confirmation_requested}
