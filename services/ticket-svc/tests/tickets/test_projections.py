"""ticket-svc against the real broker: its relay publishes, its consumers project."""

import uuid
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer
from sqlalchemy import text

from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, produce, wait_for

CHANNEL = Principal(kind="channel", id="key-1", channel="wechat")
BODY = {"subject": "退款进度?", "requester": {"wechat_openid": "oX_123"}, "priority": "urgent"}






async def test_relay_publishes_ticket_created(full_client, infra):
    created = (await full_client.post("/v1/tickets", json=BODY, headers=identity_headers(CHANNEL))).json()
    consumer = AIOKafkaConsumer(
        full_client.topics + events.TICKETS_TOPIC, bootstrap_servers=infra.kafka_bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        async def found():
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for r in records:
                    e = events.decode(r.value)
                    if e.type == "ticket.created" and str(e.data.ticket_id) == created["id"]:
                        assert r.key == created["id"].encode()
                        return e
            return None

        event = await wait_for(found)
    finally:
        await consumer.stop()
    assert event.data.requester.wechat_openid == "oX_123"
    assert event.data.channel == "wechat" and event.data.priority == "urgent"


async def test_resolution_links_once_and_sla_due_time_shows(full_client, infra, db):
    created = (await full_client.post("/v1/tickets", json=BODY, headers=identity_headers(CHANNEL))).json()
    ticket_id, customer_id = uuid.UUID(created["id"]), uuid.uuid4()
    due = datetime.now(UTC) + timedelta(hours=1)
    resolved = events.CustomerRequesterResolved(
        source="test", subject=str(ticket_id),
        data=events.CustomerRequesterResolvedData(ticket_id=ticket_id, customer_id=customer_id, created=True),
    )
    sla = events.SlaApplied(
        source="test", subject=str(ticket_id),
        data=events.SlaAppliedData(ticket_id=ticket_id, metric="first_response", policy="default", target_minutes=60,
                                   started_at=datetime.now(UTC), due_at=due),
    )
    identity = events.CustomerCreated(
        source="test", subject=str(customer_id),
        data=events.CustomerCreatedData(customer_id=customer_id, identities=[{"kind": "wechat_openid", "value": "oX_123"}],
                                        created_at=datetime.now(UTC)),
    )
    # every event delivered twice: the inbox must make the second delivery a no-op
    await produce(infra.kafka_bootstrap, full_client.topics, identity, resolved, resolved, sla, sla)

    async def linked():
        r = await full_client.get(f"/v1/tickets/{ticket_id}", headers=identity_headers(CHANNEL))
        body = r.json()
        return body if body["customer_id"] and body["sla"]["first_response_due_at"] else None

    body = await wait_for(linked)
    assert body["customer_id"] == str(customer_id)
    assert datetime.fromisoformat(body["sla"]["first_response_due_at"]) == due.replace(microsecond=due.microsecond)
    async with db.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM outbox WHERE event_type = 'ticket.customer_linked'")) == 1
    # the projection now links the next ticket of the same requester at intake, synchronously
    again = await full_client.post("/v1/tickets", json=BODY, headers=identity_headers(CHANNEL))
    assert again.json()["customer_id"] == str(customer_id)
