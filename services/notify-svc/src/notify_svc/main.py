from fastapi import FastAPI

from helpdesk_common.app import ServiceParts, build_app

from .config import Settings, get_settings
from .db import inbox, outbox
from .webhooks.endpoints import router as webhooks_router


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(
        settings or get_settings(),
        ServiceParts(
            title="notify-svc",
            routers=[webhooks_router],
            outbox=outbox,
            inbox=inbox,
            raw_pool=True,
            consumers=[],
        ),
    )
