"""sla-svc on the real broker: ticket.created → one timer and one sla.applied, even if delivered twice."""

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, running_app, service_env

ADMIN = Principal(kind="user", id="u1", role="admin")


def ticket_created(priority: str) -> events.TicketCreated:
    tid = uuid.uuid4()
    return events.TicketCreated(
        source="test", subject=str(tid),
        data=events.TicketCreatedData(ticket_id=tid, subject="s", status="new", priority=priority, channel="api",
                                      requester=events.Requester(email="a@b.co"), created_by="channel:k",
                                      created_at=datetime(2026, 11, 22, 8, 0, tzinfo=UTC)),
    )


async def test_timer_applied_once(infra, monkeypatch):
    url = infra.new_database("sla_svc")
    topics = service_env(monkeypatch, infra, "SLA_", url)
    from sla_svc.config import Settings
    from sla_svc.main import create_app

    event = ticket_created("high")
    async with running_app(create_app(Settings())) as client:
        producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap)
        await producer.start()
        for _ in range(2):
            await producer.send_and_wait(topics + events.TICKETS_TOPIC, events.encode(event), key=event.subject.encode())
        await producer.stop()
        deadline = time.monotonic() + 40
        items = []
        while time.monotonic() < deadline and not items:
            r = await client.get(f"/v1/sla/tickets/{event.data.ticket_id}/timers", headers=identity_headers(ADMIN))
            items = r.json()["items"]
            await asyncio.sleep(0.2)
        assert len(items) == 1
        assert items[0]["target_minutes"] == 240
        due = datetime.fromisoformat(items[0]["due_at"])
        assert due == event.data.created_at + timedelta(hours=4)
        channel = Principal(kind="channel", id="k", channel="api")
        assert (await client.get(f"/v1/sla/tickets/{uuid.uuid4()}/timers", headers=identity_headers(channel))).status_code == 403
        await asyncio.sleep(1)  # the duplicate delivery has been seen by now
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM sla_timers")) == 1
        assert await conn.scalar(text("SELECT count(*) FROM outbox WHERE event_type = 'sla.applied'")) == 1
    await engine.dispose()
