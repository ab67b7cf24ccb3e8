"""Kafka client construction shared by the relay and the consumers."""

from __future__ import annotations

import asyncio
import logging
from typing import Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from .settings import ServiceSettings

log = logging.getLogger(__name__)


def _disable_implicit_topic_creation() -> None:
    """Never let a metadata request create a topic.

    Brokers that auto-create (tansu always does) would otherwise create a topic with their
    default partition count the moment a producer or consumer asks for it, e.g. right after
    the embedded broker restarted empty, racing our explicit creation; on tansu 0.6 that race
    left records counted but unreadable. Topics are created explicitly by ``ensure_topics``
    (relay and consumer start, and after every broker error), so a missing topic surfaces as
    an error and a retry instead.
    """
    import aiokafka.client as client_module
    from aiokafka.protocol.metadata import MetadataRequest

    class ExplicitTopicsMetadataRequest(MetadataRequest):
        def __init__(self, topics: list[str] | None = None, allow_auto_topic_creation: bool | None = None):
            super().__init__(topics, allow_auto_topic_creation=False)

    client_module.MetadataRequest = ExplicitTopicsMetadataRequest  # type: ignore[misc]


_disable_implicit_topic_creation()


async def new_producer(settings: ServiceSettings) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=settings.kafka_idempotent_producer,
        linger_ms=2,
        max_request_size=settings.kafka_max_request_bytes,
        request_timeout_ms=5_000,
        client_id=settings.service_name,
    )
    try:
        await asyncio.wait_for(producer.start(), 15)
    except BaseException:
        await producer.stop()
        raise
    return producer


def topic_configs(settings: ServiceSettings) -> dict[str, str]:
    """Configs of a topic we create (pure): the bounded retention of personal data in the log."""
    if settings.kafka_topic_retention_ms:
        return {"retention.ms": str(settings.kafka_topic_retention_ms)}
    return {}


async def ensure_topics(settings: ServiceSettings, topics: Iterable[str], *, with_dlq: bool = True) -> None:
    """Create the topics (and their DLQs) if missing; the embedded broker forgets them on restart."""
    wanted = []
    for topic in topics:
        wanted.append(topic)
        if with_dlq:
            wanted.append(f"{topic}.dlq")
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, request_timeout_ms=10_000
    )
    await asyncio.wait_for(admin.start(), 15)
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if not missing:
            return
        new = [
            NewTopic(
                name=t,
                num_partitions=1 if t.endswith(".dlq") else settings.kafka_topic_partitions,
                replication_factor=settings.kafka_replication_factor,
                topic_configs=topic_configs(settings),
            )
            for t in missing
        ]
        try:
            await admin.create_topics(new)
        except TopicAlreadyExistsError:
            pass
    finally:
        await admin.close()


async def broker_reachable(settings: ServiceSettings, timeout: float = 2.0) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout)
        await asyncio.wait_for(admin.list_topics(), timeout)
        return True
    except Exception:
        return False
    finally:
        try:
            await admin.close()
        except Exception:
            pass
