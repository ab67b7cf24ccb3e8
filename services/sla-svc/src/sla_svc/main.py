from fastapi import FastAPI

from helpdesk_common.app import ConsumerSpec, ServiceParts, build_app
from helpdesk_common.events import TICKETS_TOPIC

from .config import Settings, get_settings
from .db import inbox, outbox
from .timers.endpoints import router as timers_router
from .timers.handlers import handle_ticket_created


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(
        settings or get_settings(),
        ServiceParts(
            title="sla-svc",
            routers=[timers_router],
            outbox=outbox,
            inbox=inbox,
            consumers=[
                ConsumerSpec(name="sla-svc.timers", topics=[TICKETS_TOPIC], handlers={"ticket.created": handle_ticket_created})
            ],
        ),
    )
