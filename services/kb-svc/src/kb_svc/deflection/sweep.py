"""The outcome sweep: a background loop in every replica that decides the suggestions whose
deflection window has passed (rows taken with ``FOR UPDATE SKIP LOCKED``, so replicas share the
work and none is decided twice), and emits one ``kb.suggestion_outcome`` each via the outbox;
then deletes the decided suggestions older than the retention (``KB_SUGGESTIONS_RETENTION_DAYS``)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from fastapi import FastAPI

from helpdesk_common.periodic import periodic

from . import service
from .handlers import window

log = logging.getLogger(__name__)


async def sweep_once(runtime: Any, settings: Any) -> int:
    """One pass: batches until nothing is due, then the decided suggestions past their retention
    deleted in batches; how many suggestions were decided."""
    total = 0
    while True:
        async with runtime.raw_transaction() as conn:
            done = await service.sweep(conn, window=window(settings))
        total += done
        if done:
            runtime.notify_relay()
        if done < service.SWEEP_BATCH:
            break
    retention = timedelta(days=settings.suggestions_retention_days)
    while True:
        async with runtime.raw_transaction() as conn:
            purged = await service.purge(conn, retention=retention)
        if purged < service.SWEEP_BATCH:
            return total


def sweep_loop(settings: Any):  # type: ignore[no-untyped-def]
    async def step(app: FastAPI) -> None:
        await sweep_once(app.state.runtime, settings)

    return periodic("kb-deflection-sweep", settings.deflection_sweep_interval_s, step)
