"""Outbox relay and inbox consumer against the real PostgreSQL and broker."""

import asyncio
import time
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import Column, Integer, Table, Text, Uuid, func, insert, select
from sqlalchemy.ext.asyncio import create_async_engine

from helpdesk_common import events
from helpdesk_common.consumer import ConsumerRunner, inbox_table
from helpdesk_common.db import new_metadata
from helpdesk_common.migrate import ensure_database
from helpdesk_common.outbox import OUTBOX_BACKLOG, OutboxRelay, enqueue, outbox_table
from helpdesk_common.settings import ServiceSettings

metadata = new_metadata()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
effects = Table("effects", metadata, Column("n", Integer, primary_key=True, autoincrement=True), Column("event_id", Uuid), Column("note", Text))


class Killed(BaseException):
    """Stands in for SIGKILL: nothing after the hook runs, no offset commit."""


@pytest.fixture
async def engine(infra):
    url = f"{infra.db_base}/t_bus_{uuid.uuid4().hex[:8]}"
    await ensure_database(url)
    eng = create_async_engine(url)
    async with eng.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield eng
    await eng.dispose()


@pytest.fixture
def settings(infra):
    return ServiceSettings(
        service_name="bus-test", KAFKA_BOOTSTRAP_SERVERS=infra.kafka_bootstrap, KAFKA_TOPIC_PARTITIONS=3,
        consumer_max_attempts=2, consumer_retry_base_s=0.05, relay_poll_interval_s=0.1,
    )


def linked_event() -> events.TicketCustomerLinked:
    tid = uuid.uuid4()
    return events.TicketCustomerLinked(
        source="test", subject=str(tid),
        data=events.TicketCustomerLinkedData(ticket_id=tid, customer_id=uuid.uuid4()),
    )


async def produce(bootstrap, topic, *payloads):
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for p in payloads:
            await producer.send_and_wait(topic, p, key=b"k")
    finally:
        await producer.stop()


async def eventually(predicate, timeout=40.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


async def count_effects(engine) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(select(func.count()).select_from(effects))


async def record_effect(conn, event):
    await conn.execute(insert(effects).values(event_id=event.id, note=event.type))


async def test_killed_after_db_commit_before_offset_commit_has_no_second_effect(engine, settings, infra):
    topic, group = f"t-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    seen_batches = []

    def crash(records):
        seen_batches.append(records)
        raise Killed()

    first = ConsumerRunner(name=group, topics=[topic], handlers={"ticket.customer_linked": record_effect},
                           engine=engine, inbox=inbox, settings=settings, after_db_commit=crash)
    task = asyncio.create_task(first.run())
    await asyncio.sleep(0.5)  # let the topic exist before producing
    await produce(infra.kafka_bootstrap, topic, events.encode(linked_event()))
    with pytest.raises(Killed):
        await asyncio.wait_for(task, 60)
    assert await count_effects(engine) == 1  # the database commit happened

    redelivered = []
    second = ConsumerRunner(name=group, topics=[topic], handlers={"ticket.customer_linked": record_effect},
                            engine=engine, inbox=inbox, settings=settings, after_db_commit=redelivered.append)
    task = asyncio.create_task(second.run())
    try:
        async def replayed():
            return bool(redelivered)
        await eventually(replayed)
    finally:
        await second.stop()
        task.cancel()
    assert [r.offset for r in redelivered[0]] == [r.offset for r in seen_batches[0]]  # same record again
    assert await count_effects(engine) == 1  # ... with no second effect


async def test_poison_record_goes_to_dlq_and_consumer_moves_on(engine, settings, infra):
    topic, group = f"t-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    bad, good = linked_event(), linked_event()

    async def handler(conn, event):
        if event.id == bad.id:
            raise RuntimeError("cannot apply this one")
        await record_effect(conn, event)

    runner = ConsumerRunner(name=group, topics=[topic], handlers={"ticket.customer_linked": handler},
                            engine=engine, inbox=inbox, settings=settings)
    task = asyncio.create_task(runner.run())
    try:
        await asyncio.sleep(0.5)
        await produce(infra.kafka_bootstrap, topic, events.encode(bad), b"{not json", events.encode(good))

        async def good_applied():
            return await count_effects(engine) == 1
        await eventually(good_applied)
    finally:
        await runner.stop()
        task.cancel()
    dlq = AIOKafkaConsumer(f"{topic}.dlq", bootstrap_servers=infra.kafka_bootstrap, auto_offset_reset="earliest")
    await dlq.start()
    try:
        records = []
        deadline = time.monotonic() + 20
        while len(records) < 2 and time.monotonic() < deadline:
            for recs in (await dlq.getmany(timeout_ms=500)).values():
                records += recs
    finally:
        await dlq.stop()
    assert len(records) == 2
    by_error = {dict(r.headers)["dlq.error.type"].decode(): dict(r.headers) for r in records}
    assert set(by_error) == {"RuntimeError", "JSONDecodeError"}
    assert by_error["RuntimeError"]["dlq.attempts"] == b"2"
    assert by_error["RuntimeError"]["dlq.original.topic"] == topic.encode()
    async with engine.connect() as conn:  # the failed event left no inbox mark: it can be replayed
        assert await conn.scalar(select(func.count()).select_from(inbox).where(inbox.c.event_id == bad.id)) == 0


async def test_relay_publishes_backlog_in_order_and_marks_sent(engine, settings, infra):
    evts = [linked_event() for _ in range(30)]
    async with engine.begin() as conn:  # written while no relay runs: a backlog, as after a crash
        await enqueue(conn, outbox, *evts)
    relay = OutboxRelay(engine=engine, table=outbox, settings=settings)
    task = asyncio.create_task(relay.run())
    try:
        async def drained():
            async with engine.connect() as conn:
                return await conn.scalar(select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))) == 0
        await eventually(drained)
    finally:
        await relay.stop()
        task.cancel()
    reader = AIOKafkaConsumer(events.TICKETS_TOPIC, bootstrap_servers=infra.kafka_bootstrap, auto_offset_reset="earliest")
    await reader.start()
    try:
        ids = set()
        deadline = time.monotonic() + 20
        wanted = {e.id for e in evts}
        while not wanted <= ids and time.monotonic() < deadline:
            for recs in (await reader.getmany(timeout_ms=500)).values():
                for r in recs:
                    ids.add(events.decode(r.value).id)
    finally:
        await reader.stop()
    assert wanted <= ids
    assert OUTBOX_BACKLOG._value.get() == 0
