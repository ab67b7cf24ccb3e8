"""Sends due surveys from the service process (every replica runs one).

Each tick claims a bounded batch of due surveys with ``FOR UPDATE SKIP LOCKED`` in one
transaction and marks them sent together with their delivery orders (the outbox), so replicas
share the work and a survey goes out once; a full batch is followed at once by the next, an
empty one waits for the poll interval. Without ``CUSTOMER_SURVEY_TOKEN_KEY`` nothing can be
signed, so nothing is sent: surveys wait, scheduled, until a key is configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from . import service

log = logging.getLogger(__name__)


class SurveyWorker:
    def __init__(self, *, pool: Any, notify: Any, key: bytes, base_url: str, ttl_s: int, batch: int,
                 poll_s: float) -> None:
        self.pool = pool
        self.notify = notify
        self.key = key
        self.base_url = base_url
        self.ttl_s = ttl_s
        self.batch = batch
        self.poll_s = poll_s

    async def run(self) -> None:
        while True:
            try:
                handled = await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database away: try again on the next tick
                log.exception("survey worker tick failed")
                handled = 0
            if handled < self.batch:
                await asyncio.sleep(self.poll_s)

    async def tick(self) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            handled = await service.send_due(conn, key=self.key, base_url=self.base_url, ttl_s=self.ttl_s,
                                             limit=self.batch)
        if handled:
            self.notify()
        return handled


def survey_worker_hook(settings: Any):  # type: ignore[no-untyped-def]
    """Lifespan hook: one sender per replica (off with ``CUSTOMER_SURVEYS_ENABLED=false``)."""

    @contextlib.asynccontextmanager
    async def hook(app: FastAPI) -> AsyncIterator[None]:
        task = None
        key = settings.survey_token_key
        if key is None:
            log.warning("CUSTOMER_SURVEY_TOKEN_KEY is not set: surveys are scheduled but not sent")
        elif settings.surveys_enabled:
            runtime = app.state.runtime
            worker = SurveyWorker(pool=runtime.raw_pool, notify=runtime.notify_relay,
                                  key=key.get_secret_value().encode(), base_url=settings.public_base_url,
                                  ttl_s=settings.survey_link_ttl_s, batch=settings.survey_batch,
                                  poll_s=settings.survey_poll_interval_s)
            app.state.survey_worker = worker
            task = asyncio.create_task(worker.run(), name="survey-worker")
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    return hook
