"""Starts pending erasures and runs their event-log step (every replica runs one; rows are
claimed with ``FOR UPDATE SKIP LOCKED``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiokafka.errors import KafkaConnectionError, KafkaError, UnsupportedVersionError
from fastapi import FastAPI

from helpdesk_common import erasure, events, kafka

from . import repository, service
from .settings import get_privacy_settings

log = logging.getLogger(__name__)

#: the topics that may carry a customer's personal data
PERSONAL_TOPICS = (events.TICKETS_TOPIC, events.CUSTOMERS_TOPIC, events.DELIVERIES_TOPIC, events.KB_TOPIC,
                   events.INSIGHTS_TOPIC)


def purged_topics(prefix: str) -> list[str]:
    """The personal topics and their dead-letter topics (a dead letter is a copy of the record's
    value, e.g. an event naming the person that a consumer could not handle): nobody consumes a
    DLQ, so its records below the erasure point are deleted with the rest (pure)."""
    topics = [prefix + t for t in PERSONAL_TOPICS]
    return topics + [events.dlq_topic(t) for t in topics]


async def log_step(pool: Any, service_settings: Any, *, mode: str) -> None:
    """Erasures every service acknowledged, waiting for their event-log purge (delete-records).
    With ``auto``, the embedded tansu is not asked at all (its storage does not implement
    DeleteRecords: the request panics a broker thread and drops the connection), and a broker that
    refuses it completes the request as ``retention-only``."""
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT id, services FROM privacy_requests WHERE state = 'in_progress' "
                                "AND kind = 'erase' AND log_state = 'pending' ORDER BY created_at LIMIT 10")
    if not rows:
        return
    prefix = service_settings.kafka_topic_prefix
    tansu = mode == "auto" and (await kafka.broker_profile(service_settings)).kind == "tansu"
    for row in rows:
        services = dict(row["services"])
        point = (services.get("_log") or {}).get("point")
        if tansu:
            log.warning("the embedded broker has no DeleteRecords: erasure %s relies on topic retention", row["id"])
            outcome = "retention-only"
        else:
            try:
                outcome, point = await erasure.purge_log(service_settings, topics=purged_topics(prefix),
                                                         point=point)
            except KafkaError as exc:
                if mode != "auto" or not isinstance(exc, (KafkaConnectionError, UnsupportedVersionError)):
                    raise
                log.warning("the broker did not delete records (%s): erasure %s relies on topic retention",
                            type(exc).__name__, row["id"])
                outcome = "retention-only"
        async with pool.acquire() as conn, conn.transaction():
            services["_log"] = {"point": point}
            if outcome in ("purged", "retention-only"):
                done = await repository.set_state(conn, row["id"], state="completed", services=services,
                                                  log_state=outcome)
                await service.complete(conn, request_id=row["id"], customer_id=done["customer_id"], log_state=outcome)
            else:
                await repository.set_state(conn, row["id"], state="in_progress", services=services)


def privacy_worker_hook(service_settings: Any):  # type: ignore[no-untyped-def]
    settings = get_privacy_settings()

    async def tick(runtime: Any) -> None:
        async with runtime.raw_pool.acquire() as conn, conn.transaction():
            started = await service.start_due(conn, limit=20, grace_s=settings.erase_grace_s)
            await repository.drop_expired_bundles(conn)
        if started:
            runtime.notify_relay()
        if settings.log_purge in ("delete-records", "auto"):
            await log_step(runtime.raw_pool, service_settings, mode=settings.log_purge)

    async def run(runtime: Any) -> None:
        while True:
            try:
                await tick(runtime)
            except asyncio.CancelledError:
                raise
            except Exception:  # the database or the broker away: try again on the next tick
                if getattr(runtime.raw_pool, "_closed", False):  # shutting down
                    return
                log.exception("privacy worker tick failed")
            await asyncio.sleep(settings.poll_interval_s)

    @contextlib.asynccontextmanager
    async def hook(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(run(app.state.runtime)) if settings.worker_enabled else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    return hook
