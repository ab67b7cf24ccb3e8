"""Requester resolution end to end: ticket.created on the real broker → customers and events."""

import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer
from sqlalchemy import text

from customer_svc.customers import service
from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, produce, wait_for

AGENT = identity_headers(Principal(kind="user", id="u1", role="agent"))
SUPERVISOR = identity_headers(Principal(kind="user", id="u2", role="supervisor"))




def ticket_created(**requester) -> events.TicketCreated:
    tid = uuid.uuid4()
    return events.TicketCreated(
        source="test", subject=str(tid),
        data=events.TicketCreatedData(
            ticket_id=tid, subject="s", status="new", priority="normal", channel="api",
            requester=events.Requester(**requester), created_by="channel:k", created_at=datetime.now(UTC),
        ),
    )




async def emitted(db, event_type: str | None = None) -> list:
    """Events the service wrote to its outbox, in order, as (record key, event)."""
    async with db.connect() as conn:
        rows = (await conn.execute(text("SELECT key, payload, event_type FROM outbox ORDER BY seq"))).all()
    return [(r.key, events.decode(r.payload)) for r in rows if event_type in (None, r.event_type)]


async def resolution_of(db, ticket: events.TicketCreated, timeout: float = 20.0) -> events.CustomerRequesterResolved:
    async def found():
        for _, e in await emitted(db, "customer.requester_resolved"):
            if e.data.ticket_id == ticket.data.ticket_id:
                return e
        return None

    return await wait_for(found, timeout)


async def scalar(db, sql: str, **params):
    async with db.connect() as conn:
        return await conn.scalar(text(sql), params)


async def test_requesters_resolve_to_one_customer_per_person(full, infra, db):
    first = ticket_created(name="张伟", email="Zhang.Wei@Example.com")
    await produce(infra.kafka_bootstrap, full.topics, first, first)  # delivered twice
    r1 = await resolution_of(db, first)
    assert r1.data.created is True and r1.subject == str(first.data.ticket_id)
    customer_id = r1.data.customer_id

    same_email = ticket_created(email="  zhang.wei@EXAMPLE.com ")
    await produce(infra.kafka_bootstrap, full.topics, same_email)
    r2 = await resolution_of(db, same_email)
    assert (r2.data.customer_id, r2.data.created) == (customer_id, False)

    with_new_phone = ticket_created(email="zhang.wei@example.com", phone="+86 139 0000 0000")
    await produce(infra.kafka_bootstrap, full.topics, with_new_phone)
    r3 = await resolution_of(db, with_new_phone)
    assert (r3.data.customer_id, r3.data.created) == (customer_id, False)

    someone_else = ticket_created(name="Lucy", wechat_openid="o_abc")
    await produce(infra.kafka_bootstrap, full.topics, someone_else)
    r4 = await resolution_of(db, someone_else)
    assert r4.data.created is True and r4.data.customer_id != customer_id

    assert await scalar(db, "SELECT count(*) FROM customers") == 2
    assert await scalar(db, "SELECT count(*) FROM inbox WHERE event_id = :i", i=first.id) == 1
    log = await emitted(db)
    assert [e.type for _, e in log] == [
        "customer.created", "customer.requester_resolved",
        "customer.requester_resolved",
        "customer.identity_added", "customer.requester_resolved",
        "customer.created", "customer.requester_resolved",
    ]
    for key, e in log:  # customer events are keyed by customer, resolutions by ticket
        assert key == e.subject
        assert e.subject == str(e.data.ticket_id if e.type == "customer.requester_resolved" else e.data.customer_id)
    created = log[0][1]
    assert created.data.name == "张伟"
    assert [(i.kind, i.value) for i in created.data.identities] == [("email", "zhang.wei@example.com")]
    added = log[3][1]
    assert (added.data.customer_id, added.data.identity.kind, added.data.identity.value) == (
        customer_id, "phone", "+8613900000000")

    body = (await full.get(f"/v1/customers/{customer_id}", headers=SUPERVISOR)).json()
    assert body["name"] == "张伟"
    assert [(i["kind"], i["value"]) for i in body["identities"]] == [
        ("email", "zhang.wei@example.com"), ("phone", "+8613900000000")]

    # the relay publishes what the outbox holds, keyed like the rows
    consumer = AIOKafkaConsumer(full.topics + events.CUSTOMERS_TOPIC, bootstrap_servers=infra.kafka_bootstrap,
                                group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    published: dict[str, bytes] = {}
    try:
        async def all_published():
            for records in (await consumer.getmany(timeout_ms=300)).values():
                for rec in records:
                    published[str(events.decode(rec.value).id)] = rec.key
            return len(published) >= len(log)

        await wait_for(all_published)
    finally:
        await consumer.stop()
    assert published == {str(e.id): key.encode() for key, e in log}


async def test_two_consumers_racing_for_a_new_identity_make_one_customer(full, infra, db, raw):
    """Another instance is mid-transaction creating the same person when our consumer starts.

    Our insert of the identity waits on the other's uncommitted row, then finds it taken:
    the handler raises, the transaction rolls back, the runner retries and resolves to the
    customer the other instance committed.
    """
    other_instance = ticket_created(name="Race", email="race@example.com")
    ours = ticket_created(email="RACE@example.com", phone="+1 555 0100")
    tx = raw.transaction()
    await tx.start()
    winner, created = await service.resolve_requester(
        raw, ticket_id=other_instance.data.ticket_id, requester={"name": "Race", "email": "race@example.com"})
    assert created
    await produce(infra.kafka_bootstrap, full.topics, ours)

    async def consumer_blocked():
        return await scalar(db, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                "AND wait_event_type = 'Lock'")

    await wait_for(consumer_blocked)
    await tx.commit()

    resolved = await resolution_of(db, ours)
    assert (resolved.data.customer_id, resolved.data.created) == (winner, False)
    assert await scalar(db, "SELECT count(*) FROM customers") == 1
    assert await scalar(db, "SELECT count(*) FROM customer_identities WHERE customer_id = :c", c=winner) == 2
    types = [e.type for _, e in await emitted(db)]
    assert types.count("customer.created") == 1
    assert types.count("customer.identity_added") == 1
    assert types.count("customer.requester_resolved") == 2


async def test_a_burst_from_one_new_person_makes_one_customer(full, infra, db):
    """Twenty tickets of one new person at once, spread over partitions and fetched together."""
    tickets = [ticket_created(email="burst@example.com", phone=f"+1 555 01{i:02d}") for i in range(20)]
    await produce(infra.kafka_bootstrap, full.topics, *tickets)
    for t in tickets:
        await resolution_of(db, t)
    assert await scalar(db, "SELECT count(*) FROM customers") == 1
    assert await scalar(db, "SELECT count(*) FROM customer_identities") == 21
    assert await scalar(db, "SELECT count(DISTINCT customer_id) FROM customer_identities") == 1
