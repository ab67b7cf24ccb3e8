"""The survey invitation handler, run in notify-svc's one consumer's transaction."""

from __future__ import annotations

from typing import Any

from helpdesk_common import events

from ..deliveries import dispatcher
from . import service


def handlers(settings: Any) -> dict[str, Any]:
    async def handle_delivery_requested(conn: Any, event: events.SurveyDeliveryRequested) -> None:
        if await service.queue_invitation(conn, event=event, settings=settings) is not None:
            dispatcher.wake_all()

    return {"survey.delivery_requested": handle_delivery_requested}
