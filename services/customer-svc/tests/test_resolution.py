"""customer-svc on the real broker: requesters become customers exactly once."""

import asyncio
import time
import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from customer_svc.customers.service import pick_existing
from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, running_app, service_env

AGENT = Principal(kind="user", id="u1", role="agent")


def test_pick_existing_prefers_highest_priority_identity():
    a, b = uuid.uuid4(), uuid.uuid4()
    ids = [("email", "x@y.z"), ("phone", "+1")]
    assert pick_existing(ids, {("phone", "+1"): b, ("email", "x@y.z"): a}) == a
    assert pick_existing(ids, {("phone", "+1"): b}) == b
    assert pick_existing(ids, {}) is None


def created(requester: dict) -> events.TicketCreated:
    tid = uuid.uuid4()
    return events.TicketCreated(source="t", subject=str(tid), data=events.TicketCreatedData(
        ticket_id=tid, subject="s", status="new", priority="normal", requester=events.Requester(**requester),
        created_by="channel:k", created_at=datetime.now(UTC)))


async def test_resolution(infra, monkeypatch):
    url = infra.new_database("customer_svc")
    topics = service_env(monkeypatch, infra, "CUSTOMER_", url)
    from customer_svc.config import Settings
    from customer_svc.main import create_app

    first = created({"name": "张伟", "email": "Zhang.Wei@Example.com"})
    same_person = created({"email": "zhang.wei@example.com", "phone": "+86 139 0000 0000"})
    someone_else = created({"wechat_openid": "o_abc"})
    engine = create_async_engine(url)

    async def scalar(q):
        async with engine.connect() as conn:
            return await conn.scalar(text(q))

    async with running_app(create_app(Settings())) as client:
        producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap)
        await producer.start()
        for e in (first, first, same_person, someone_else):
            await producer.send_and_wait(topics + events.TICKETS_TOPIC, events.encode(e), key=e.subject.encode())
        await producer.stop()
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            if await scalar("SELECT count(*) FROM outbox WHERE event_type = 'customer.requester_resolved'") == 3:
                break
            await asyncio.sleep(0.2)
        assert await scalar("SELECT count(*) FROM customers") == 2
        assert await scalar("SELECT count(*) FROM outbox WHERE event_type = 'customer.created'") == 2
        assert await scalar("SELECT count(*) FROM outbox WHERE event_type = 'customer.identity_added'") == 1
        assert await scalar("SELECT count(*) FROM outbox WHERE event_type = 'customer.requester_resolved'") == 3
        cid = await scalar("SELECT customer_id FROM customer_identities WHERE kind = 'email'")
        r = await client.get(f"/v1/customers/{cid}", headers=identity_headers(AGENT))
        assert r.status_code == 200
        body = r.json()
        assert body["name"] == "张伟"
        assert {(i["kind"], i["value"]) for i in body["identities"]} == {("email", "zhang.wei@example.com"), ("phone", "+8613900000000")}
        found = (await client.get("/v1/customers", params={"email": " ZHANG.WEI@example.com"}, headers=identity_headers(AGENT))).json()
        assert [c["id"] for c in found["items"]] == [str(cid)]
        assert (await client.get(f"/v1/customers/{uuid.uuid4()}", headers=identity_headers(AGENT))).status_code == 404
        assert (await client.get("/v1/customers/not-a-uuid", headers=identity_headers(AGENT))).status_code == 422
        channel = Principal(kind="channel", id="k", channel="api")
        assert (await client.get(f"/v1/customers/{cid}", headers=identity_headers(channel))).status_code == 403
    await engine.dispose()
