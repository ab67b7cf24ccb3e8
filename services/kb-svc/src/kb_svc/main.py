"""kb-svc: the knowledge base (content, search, suggestions, feedback) and the events it reads
to tell deflected visits from those a ticket followed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from helpdesk_common.events import PRIVACY_TOPIC
from helpdesk_common.app import ConsumerSpec, ServiceParts, build_app
from helpdesk_common.ticket_access import ticket_access_hook

from .config import Settings, get_settings
from .content.endpoints import router as content_router
from .content.public_endpoints import router as content_public_router
from .customer_tokens import router as customer_tokens_router
from .db import inbox, outbox
from .deflection.endpoints import router as deflection_router
from .deflection.handlers import make_handlers as deflection_handlers
from .deflection.sweep import sweep_loop
from .feedback.endpoints import router as feedback_router
from .privacy.endpoints import router as privacy_router
from .privacy.handlers import PRIVACY_HANDLERS
from .search.endpoints import router as search_router
from .search.text import segmenter


@contextlib.asynccontextmanager
async def segmenter_loaded(app: FastAPI) -> AsyncIterator[None]:
    """jieba's model loaded before the service answers, in a worker thread: loaded on first use it
    stalled the event loop of whichever request came first (a publish, a search) for its load, about
    a second on an idle core and past the gateway's 10 s upstream timeout on a loaded one (CI saw
    504s on a publish)."""
    await asyncio.to_thread(segmenter)
    yield


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # each domain package adds its router here (content, search, suggestions, feedback)
    routers: list = [content_router, content_public_router, customer_tokens_router, search_router,
                     deflection_router, feedback_router, privacy_router]
    # and its event handlers (event type -> handler) to the one consumer
    handlers: dict = {**deflection_handlers(settings), **PRIVACY_HANDLERS}
    consumers = [ConsumerSpec(name="kb-svc.events", topics=["tickets.events", PRIVACY_TOPIC], handlers=handlers,
                              raw=True)] if handlers else []
    return build_app(
        settings,
        ServiceParts(title="kb-svc", routers=routers, outbox=outbox, inbox=inbox, raw_pool=True, consumers=consumers,
                     lifespan_hooks=[segmenter_loaded, sweep_loop(settings), ticket_access_hook(settings)]),
    )
