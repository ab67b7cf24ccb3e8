"""sla-svc: policies, business calendars, timers, and the firing loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from helpdesk_common.app import ConsumerSpec, ServiceParts, build_app
from helpdesk_common.ticket_access import ticket_access_hook
from helpdesk_common.events import PRIVACY_TOPIC, TICKETS_TOPIC

from .calendars_api.endpoints import router as calendars_router
from .calendars_api.endpoints import teams_router
from .calendars_api.publishing import republish_all
from .config import Settings, get_settings
from .db import inbox, outbox
from .policies.endpoints import router as policies_router
from .timers.endpoints import router as timers_router
from .privacy.handlers import PRIVACY_HANDLERS
from .timers import service as timer_service
from .timers.handlers import HANDLERS
from .timers.scheduler import Scheduler

log = logging.getLogger(__name__)


def _scheduler_hook(settings: Settings):  # type: ignore[no-untyped-def]
    @contextlib.asynccontextmanager
    async def hook(app: FastAPI) -> AsyncIterator[None]:
        if not settings.scheduler_enabled:
            yield
            return
        scheduler = Scheduler(app.state.runtime, settings)
        app.state.scheduler = scheduler
        tasks = [asyncio.create_task(scheduler.run(), name="sla-scheduler"),
                 asyncio.create_task(scheduler.run_gauge(), name="sla-gauge")]
        try:
            yield
        finally:
            scheduler.request_stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await scheduler.stop()

    return hook


def _calendar_events_hook(settings: Settings):  # type: ignore[no-untyped-def]
    """Republish every team's calendar event at start-up (versions unchanged: idempotent for
    consumers), so a consumer whose projection is new or rebuilt catches up without a replay."""

    @contextlib.asynccontextmanager
    async def hook(app: FastAPI) -> AsyncIterator[None]:
        if settings.calendar_events_at_start:
            try:
                async with app.state.runtime.transaction() as conn:
                    await republish_all(conn)
            except Exception:  # a catch-up, not a reason to stay down: the next start retries
                log.exception("could not republish the team calendar events")
        yield

    return hook


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    return build_app(
        settings,
        ServiceParts(
            title="sla-svc",
            routers=[timers_router, policies_router, calendars_router, teams_router],
            outbox=outbox,
            inbox=inbox,
            raw_pool=True,
            consumers=[ConsumerSpec(name="sla-svc.timers", topics=[TICKETS_TOPIC, PRIVACY_TOPIC],
                                    handlers={**HANDLERS, **PRIVACY_HANDLERS},
                                    # a batch's sla.* events in one INSERT and one scheduler
                                    # wake-up, not one of each per timer (timers/deferral.py)
                                    on_begin=timer_service.begin_consumer_batch,
                                    before_commit=timer_service.end_consumer_batch)],
            lifespan_hooks=[_calendar_events_hook(settings), _scheduler_hook(settings), ticket_access_hook(settings)],
        ),
    )
