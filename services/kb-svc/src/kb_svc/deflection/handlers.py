"""Events kb-svc consumes for deflection, applied in the consumer's transaction (a bare asyncpg
connection; the inbox drops redeliveries before these run)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from helpdesk_common import events as ev

from ..config import get_settings
from . import service


def window(settings: Any = None) -> timedelta:
    return timedelta(minutes=(settings or get_settings()).deflection_window_minutes)


def make_handlers(settings: Any) -> dict[str, Any]:
    async def on_ticket_created(conn: Any, event: ev.TicketCreated) -> None:
        data = event.data
        if data.kb_suggestion_id is None:
            return
        await service.ticket_followed(conn, suggestion_id=data.kb_suggestion_id, ticket_id=data.ticket_id,
                                      created_at=data.created_at, window=window(settings))

    return {"ticket.created": on_ticket_created}
