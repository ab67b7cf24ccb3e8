"""sla-svc with the real database and broker: ticket.created → one timer and one sla.applied."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import text

from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, produce, wait_for
from sla_svc.timers import service

ADMIN = identity_headers(Principal(kind="user", id="u1", role="admin"))
AGENT = identity_headers(Principal(kind="user", id="u2", role="agent"))
CHANNEL = identity_headers(Principal(kind="channel", id="k", channel="api"))
# recent enough that no target (>= 1 h) has passed: the scheduler must not breach these timers;
# set again as each test starts (read once at collection, a test that ran an hour later in a long
# session saw its timer breached)
CREATED_AT = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(autouse=True)
def _created_now():
    global CREATED_AT
    CREATED_AT = datetime.now(UTC).replace(microsecond=0)




def ticket_created(priority: str, ticket_id: uuid.UUID | None = None) -> events.TicketCreated:
    tid = ticket_id or uuid.uuid4()
    return events.TicketCreated(
        source="test", subject=str(tid),
        data=events.TicketCreatedData(ticket_id=tid, subject="s", status="new", priority=priority, channel="api",
                                      requester=events.Requester(email="a@b.co"), created_by="channel:k",
                                      created_at=CREATED_AT),
    )




async def test_ticket_created_starts_one_timer_and_emits_sla_applied_once(full, infra, db):
    urgent = ticket_created("urgent")
    replayed = ticket_created("urgent", urgent.data.ticket_id)  # same ticket, another event id (e.g. a re-export)
    others = [ticket_created(p) for p in ("high", "normal", "low")]
    await produce(infra.kafka_bootstrap, full.topics, urgent, urgent, *others, replayed)

    async def timers(ticket_id):
        r = await full.get(f"/v1/sla/tickets/{ticket_id}/timers", headers=ADMIN)  # agents: test_ticket_access.py
        assert r.status_code == 200, r.text
        return r.json()["items"]

    async def all_inbox():
        async with db.connect() as conn:
            return await conn.scalar(text("SELECT count(*) FROM inbox")) == 5

    await wait_for(all_inbox)
    items = await timers(urgent.data.ticket_id)
    z = lambda d: d.isoformat().replace("+00:00", "Z")  # noqa: E731
    assert items == [{
        "metric": "first_response", "policy": "default", "target_minutes": 60,
        "started_at": z(CREATED_AT), "due_at": z(CREATED_AT + timedelta(hours=1)), "status": "running",
    }]
    for e, hours in zip(others, (4, 8, 24)):
        [timer] = await timers(e.data.ticket_id)
        assert datetime.fromisoformat(timer["due_at"]) == CREATED_AT + timedelta(hours=hours)

    async with db.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM sla_timers")) == 4
        rows = (await conn.execute(text("SELECT key, payload FROM outbox ORDER BY seq"))).all()
    applied = [events.decode(r.payload) for r in rows]
    assert [a.type for a in applied] == ["sla.applied"] * 4
    assert [r.key for r in rows] == [str(a.data.ticket_id) for a in applied] == [a.subject for a in applied]
    first = next(a for a in applied if a.data.ticket_id == urgent.data.ticket_id)
    assert (first.data.metric, first.data.policy, first.data.target_minutes) == ("first_response", "default", 60)
    assert (first.data.started_at, first.data.due_at) == (CREATED_AT, CREATED_AT + timedelta(hours=1))

    consumer = AIOKafkaConsumer(full.topics + events.SLA_TOPIC, bootstrap_servers=infra.kafka_bootstrap,
                                group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    published = {}
    try:
        async def all_published():
            for records in (await consumer.getmany(timeout_ms=300)).values():
                for rec in records:
                    published[events.decode(rec.value).id] = rec.key
            return len(published) >= 4

        await wait_for(all_published)
    finally:
        await consumer.stop()
    assert published == {a.id: a.subject.encode() for a in applied}


async def test_apply_is_idempotent_per_ticket(db):
    tid = uuid.uuid4()
    async with db.begin() as conn:
        assert await service.apply_first_response(conn, ticket_id=tid, priority="high", created_at=CREATED_AT)
        assert not await service.apply_first_response(conn, ticket_id=tid, priority="urgent", created_at=CREATED_AT)
        assert await conn.scalar(text("SELECT count(*) FROM outbox")) == 1
        assert await conn.scalar(text("SELECT target_minutes FROM sla_timers")) == 240


async def test_api_errors_and_policy_table(api):
    assert (await api.get(f"/v1/sla/tickets/{uuid.uuid4()}/timers", headers=ADMIN)).json() == {"items": []}
    bad = await api.get("/v1/sla/tickets/12345/timers", headers=ADMIN)
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    policy = await api.get("/v1/sla/policies/default", headers=AGENT)
    assert policy.status_code == 200
    assert policy.json()["first_response_minutes"] == {"urgent": 60, "high": 240, "normal": 480, "low": 1440}
    for path in (f"/v1/sla/tickets/{uuid.uuid4()}/timers", "/v1/sla/policies/default"):
        denied = await api.get(path, headers=CHANNEL)
        assert denied.status_code == 403 and denied.headers["content-type"] == "application/problem+json"
        assert (await api.get(path)).status_code == 401
