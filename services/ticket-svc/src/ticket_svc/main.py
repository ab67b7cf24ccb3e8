from fastapi import FastAPI

from helpdesk_common.app import ConsumerSpec, ServiceParts, build_app
from helpdesk_common.events import CUSTOMERS_TOPIC, SLA_TOPIC

from .config import Settings, get_settings
from .db import inbox, outbox
from .tickets.endpoints import router as tickets_router
from .tickets.handlers import HANDLERS


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(
        settings or get_settings(),
        ServiceParts(
            title="ticket-svc",
            routers=[tickets_router],
            outbox=outbox,
            inbox=inbox,
            raw_pool=True,
            consumers=[
                ConsumerSpec(name="ticket-svc.projections", topics=[CUSTOMERS_TOPIC, SLA_TOPIC], handlers=HANDLERS)
            ],
        ),
    )
