"""The timer scheduler as a lifespan task of ticket-svc, in every replica (like the re-offer loop).

Settings (environment, prefix ``TICKET_``): ``TIMERS_ENABLED`` (default true),
``TIMER_BATCH_SIZE`` (tickets with due timers claimed per transaction, default 100),
``TIMER_WORKERS`` (claim loops draining side by side when behind, default 3),
``AUTOMATION_SWEEP_BATCH_SIZE`` (open tickets re-planned per transaction, default 200).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict

from . import automations, repository, scheduler

log = logging.getLogger(__name__)


class TimerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TICKET_", extra="ignore")

    timers_enabled: bool = True
    timer_batch_size: int = 100
    timer_workers: int = 3
    automation_sweep_batch_size: int = 200


def timers_loop(settings: Any):  # type: ignore[no-untyped-def]
    """Lifespan hook: the firing loop, its pending gauge and the automation re-planning sweeper."""
    timer_settings = TimerSettings()

    @contextlib.asynccontextmanager
    async def hook(app: Any) -> AsyncIterator[None]:
        if not timer_settings.timers_enabled:
            log.info("ticket timers disabled in this process (TICKET_TIMERS_ENABLED=false)")
            yield
            return
        pool = app.state.runtime.raw_pool
        sched = scheduler.TimerScheduler(pool, scheduler.asyncpg_dsn(settings.database_url),
                                         batch_size=timer_settings.timer_batch_size,
                                         workers=timer_settings.timer_workers,
                                         wake_relay=app.state.runtime.notify_relay)
        sweeper = automations.Sweeper(pool, batch_size=timer_settings.automation_sweep_batch_size)
        sched.listen(repository.AUTOMATIONS_CHANNEL, sweeper.on_notify)
        async with scheduler.running(sched, sweeper.run()):
            yield

    return hook
