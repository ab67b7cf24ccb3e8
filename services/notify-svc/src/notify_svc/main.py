"""notify-svc: webhook subscriptions, deliveries (the consumer that queues replies, the dispatcher
that sends them through the channel adapters), and the API over both."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping

from fastapi import FastAPI

from helpdesk_common.app import ConsumerSpec, ServiceParts, build_app
from helpdesk_common.events import ALL_TOPICS

from .channels.base import Adapter
from .channels.chat import ChatAdapter
from .channels.email import EmailAdapter
from .channels.providers import chat_adapters
from .config import Settings, get_settings
from .confirmations.handlers import handlers as confirmation_handlers
from .db import inbox, outbox
from .deliveries.dispatcher import Dispatcher, ticket_attachment_fetcher
from .deliveries.endpoints import router as deliveries_router
from .deliveries.handoff import Handoff
from .deliveries.handlers import handlers as delivery_handlers
from .deliveries.handlers import WebhookRouting
from .deliveries.webhook_sender import WebhookSender
from .notifications.endpoints import router as notifications_router
from .notifications.handlers import handlers as notification_handlers
from .routing import EventRouting, compose
from .privacy.endpoints import router as privacy_router
from .privacy.handlers import PRIVACY_HANDLERS
from .surveys.handlers import handlers as survey_handlers
from .webhooks.endpoints import router as webhooks_router


def build_adapters(settings: Settings) -> dict[str, Adapter]:
    """Every outbound channel: e-mail, and WeChat, WeCom and DingTalk on one shared transport."""
    return {"email": EmailAdapter.from_settings(settings), **chat_adapters(settings), "chat": ChatAdapter()}


async def _refresh_webhook_types(app: FastAPI, settings: Settings, routing: EventRouting) -> None:
    """Keep the consumer's webhook fan-out to the subscribed event types (deliveries/handlers.py)."""
    import asyncio
    import logging

    while True:
        try:
            async with app.state.runtime.raw_connection() as conn:
                await routing.refresh(conn)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database is away: keep the last set (or all types)
            logging.getLogger(__name__).warning("webhook types refresh failed", extra={"error": repr(exc)})
        await asyncio.sleep(settings.webhook_types_refresh_s)


def _with_dispatcher(app: FastAPI, settings: Settings, adapters: Mapping[str, Adapter] | None,
                     webhook_routing: EventRouting, handoff: Handoff) -> None:
    """Run the dispatcher inside the shared lifespan: it starts after the database pools and
    stops (finishing and recording the sends in flight) before they close. While it runs, the
    consumer hands it the rows it claims as it queues them (``handoff``)."""
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with inner(app):
            if not settings.dispatcher_enabled:
                yield
                return
            import asyncio

            channel_adapters = dict(adapters) if adapters is not None else build_adapters(settings)
            channel_adapters.setdefault("webhook", WebhookSender(runtime=app.state.runtime, settings=settings))
            fetch, close_fetcher = ticket_attachment_fetcher(settings.ticket_url,
                                                             max_bytes=settings.attachment_max_bytes)
            dispatcher = Dispatcher(runtime=app.state.runtime, settings=settings, adapters=channel_adapters,
                                    fetch_attachment=fetch)
            app.state.dispatcher = dispatcher
            handoff.receiver = dispatcher
            task = asyncio.create_task(dispatcher.run(), name="notify-dispatcher")
            refresher = asyncio.create_task(_refresh_webhook_types(app, settings, webhook_routing),
                                            name="notify-webhook-types")
            try:
                yield
            finally:
                handoff.receiver = None
                refresher.cancel()
                await dispatcher.stop()
                task.cancel()
                await asyncio.gather(task, refresher, return_exceptions=True)
                await close_fetcher()
                for adapter in {id(a): a for a in channel_adapters.values()}.values():
                    with contextlib.suppress(Exception):
                        await adapter.close()

    app.router.lifespan_context = lifespan


def create_app(settings: Settings | None = None, *, adapters: Mapping[str, Adapter] | None = None) -> FastAPI:
    """``adapters``: tests replace the channels (the default builds them from the settings)."""
    settings = settings or get_settings()
    handoff = Handoff()
    # one consumer group for everything notify-svc reads (routing.py says why)
    routing = EventRouting(compose(notification_handlers(settings), delivery_handlers(settings),
                                   survey_handlers(settings), confirmation_handlers(settings), PRIVACY_HANDLERS),
                           WebhookRouting())
    app = build_app(
        settings,
        ServiceParts(
            title="notify-svc",
            routers=[webhooks_router, notifications_router, deliveries_router, privacy_router],
            outbox=outbox,
            inbox=inbox,
            raw_pool=True,
            consumers=[ConsumerSpec(name="notify-svc.events", topics=list(ALL_TOPICS), handlers=routing.handlers,
                                    raw=True, on_begin=handoff.begin, after_transaction=handoff.end)],
        ),
    )
    _with_dispatcher(app, settings, adapters, routing, handoff)
    return app
