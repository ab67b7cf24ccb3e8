"""The survey invitation handler, run in notify-svc's one consumer's transaction."""

from __future__ import annotations

from typing import Any

from helpdesk_common import events

from . import service


def handlers(settings: Any) -> dict[str, Any]:
    async def handle_delivery_requested(conn: Any, event: events.SurveyDeliveryRequested) -> None:
        await service.queue_invitation(conn, event=event, settings=settings)

    return {"survey.delivery_requested": handle_delivery_requested}
