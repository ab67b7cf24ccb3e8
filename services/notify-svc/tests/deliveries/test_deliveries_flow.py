"""Deliveries end to end inside notify-svc, on the real database and broker: a
``ticket.reply_requested`` event becomes one delivery, the dispatcher sends it through the channel
adapter and records the attempt, the status and a ``delivery.*`` event; retries, dead letters and
the manual retry; the claim with several dispatchers; a lease that expires resends with the same
id. The channel adapters are scripted fakes (the real ones have their own tests)."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy import text

from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, produce, running_app, service_env, wait_for

from notify_svc.channels.base import OutboundMessage, SendResult
from notify_svc.deliveries import repository

pytestmark = pytest.mark.timeout(120)

ADMIN = identity_headers(Principal(kind="user", id=str(uuid.uuid4()), role="admin"))
SUPERVISOR = identity_headers(Principal(kind="user", id=str(uuid.uuid4()), role="supervisor"))
AGENT = identity_headers(Principal(kind="user", id=str(uuid.uuid4()), role="agent"))
CHANNEL = identity_headers(Principal(kind="channel", id=str(uuid.uuid4()), channel="api"))


class ScriptedAdapter:
    """Answers by the recipient: a list of outcomes to give in turn (the last one repeats)."""

    def __init__(self, channel: str, script: dict[str, list[str]] | None = None) -> None:
        self.channel = channel
        self.script = script or {}
        self.sent: list[OutboundMessage] = []
        self.calls: dict[str, int] = defaultdict(int)
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay = 0.0

    async def send(self, message: OutboundMessage) -> SendResult:
        to = message.route.get("to") or message.route.get("openid") or ""
        to = to[0] if isinstance(to, list) else to
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            outcomes = self.script.get(to, ["sent"])
            outcome = outcomes[min(self.calls[to], len(outcomes) - 1)]
            self.calls[to] += 1
            if outcome == "sent":
                self.sent.append(message)
                return SendResult("sent", provider_id=f"p-{len(self.sent)}")
            return SendResult(outcome, reason=f"scripted {outcome}", code="999", retry_after=None)
        finally:
            self.in_flight -= 1

    async def close(self) -> None:
        return None


def reply_event(*, to: str = "li@example.com", channel: str = "email", message_id: uuid.UUID | None = None,
                ticket_id: uuid.UUID | None = None) -> events.TicketReplyRequested:
    ticket_id = ticket_id or uuid.uuid4()
    message_id = message_id or uuid.uuid4()
    return events.TicketReplyRequested(
        source="ticket-svc", subject=str(ticket_id),
        data=events.TicketReplyRequestedData(
            ticket_id=ticket_id, number=7, message_id=message_id, subject="Printer", channel=channel,
            recipient=events.Requester(email=to if "@" in to else None),
            route={"to": [to]} if channel == "email" else {"openid": to},
            body_text="We fixed it.", email_message_id=f"<{message_id}@support.test>",
            in_reply_to="<c1@example.com>", references=["<c1@example.com>"], requested_at=datetime.now(UTC)))


@pytest.fixture
async def notify(infra, notify_db, secret_key, monkeypatch):
    """The whole service on the test broker, with scripted adapters; fast retries."""
    topics = service_env(monkeypatch, infra, "NOTIFY_", notify_db)
    monkeypatch.setenv("NOTIFY_SECRET_KEY", secret_key)
    monkeypatch.setenv("NOTIFY_WEBHOOK_ALLOW_NETWORKS", "127.0.0.1/32")
    monkeypatch.setenv("NOTIFY_WEBHOOK_TYPES_REFRESH_S", "0.2")
    monkeypatch.setenv("NOTIFY_REPLY_BACKOFF_BASE_S", "0.5")
    monkeypatch.setenv("NOTIFY_REPLY_BACKOFF_CAP_S", "1")
    monkeypatch.setenv("NOTIFY_REPLY_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("NOTIFY_DESTINATION_CONCURRENCY", "2")
    monkeypatch.setenv("NOTIFY_DISPATCHER_POLL_INTERVAL_S", "0.2")
    from notify_svc.config import Settings
    from notify_svc.main import create_app

    email = ScriptedAdapter("email")
    wechat = ScriptedAdapter("wechat")
    async with running_app(create_app(Settings(), adapters={"email": email, "wechat": wechat})) as client:
        client.topics = topics
        client.email = email
        client.wechat = wechat
        client.bootstrap = infra.kafka_bootstrap
        yield client


async def _delivery_of(client, message_id: uuid.UUID, status: str | None = None) -> dict | None:
    answer = await client.get("/v1/deliveries", headers=ADMIN)
    for item in answer.json()["items"]:
        if item["message_id"] == str(message_id) and (status is None or item["status"] == status):
            return item
    return None


async def _outbox_types(db, delivery_id: str) -> list[str]:
    async with db.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT event_type, payload FROM outbox WHERE topic = 'deliveries.events' ORDER BY seq"))).all()
    import orjson

    return [r.event_type for r in rows if orjson.loads(r.payload)["data"]["delivery_id"] == delivery_id]


async def test_a_reply_is_delivered_once_and_reported(notify, db) -> None:
    event = reply_event()
    await produce(notify.bootstrap, notify.topics, event)
    # bounded, not timed: how fast a reply leaves is make bench's figure (the first join of a new
    # consumer group took 20 s once on a loaded CI runner)
    delivery = await wait_for(lambda: _delivery_of(notify, event.data.message_id, "sent"), timeout=45)
    [sent] = notify.email.sent
    assert sent.delivery_id == uuid.UUID(delivery["id"])
    assert sent.email_message_id == f"<{event.data.message_id}@support.test>"
    assert sent.extra["number"] == 7
    assert (delivery["kind"], delivery["channel"], delivery["attempts"], delivery["ticket_id"]) == (
        "reply", "email", 1, str(event.data.ticket_id))
    detail = (await notify.get(f"/v1/deliveries/{delivery['id']}", headers=SUPERVISOR)).json()
    assert [(a["number"], a["outcome"]) for a in detail["attempts_log"]] == [(1, "sent")]
    assert await _outbox_types(db, delivery["id"]) == ["delivery.succeeded"]

    # the same event again (a redelivery past the inbox) and another event for the same message:
    # no second delivery, nothing sent again
    again = reply_event(message_id=event.data.message_id, ticket_id=event.data.ticket_id)
    await produce(notify.bootstrap, notify.topics, event, again)
    await asyncio.sleep(1.5)
    assert len(notify.email.sent) == 1
    listed = (await notify.get(f"/v1/deliveries?ticket_id={event.data.ticket_id}", headers=ADMIN)).json()
    assert len(listed["items"]) == 1


async def test_transient_failures_are_retried_then_dead_then_retried_by_hand(notify, db) -> None:
    notify.email.script = {"flaky@example.com": ["transient", "sent"],
                           "down@example.com": ["transient"],
                           "refused@example.com": ["permanent"]}
    flaky, down, refused = (reply_event(to=f"{name}@example.com") for name in ("flaky", "down", "refused"))
    await produce(notify.bootstrap, notify.topics, flaky, down, refused)

    ok = await wait_for(lambda: _delivery_of(notify, flaky.data.message_id, "sent"), timeout=30)
    assert ok["attempts"] == 2
    assert await _outbox_types(db, ok["id"]) == ["delivery.deferred", "delivery.succeeded"]

    dead = await wait_for(lambda: _delivery_of(notify, refused.data.message_id, "failed"), timeout=30)
    assert dead["attempts"] == 1 and dead["reason"] == "scripted permanent" and dead["last_code"] == "999"

    exhausted = await wait_for(lambda: _delivery_of(notify, down.data.message_id, "failed"), timeout=30)
    assert exhausted["attempts"] == 3 and exhausted["reason"].startswith("gave up after 3 attempts")
    assert await _outbox_types(db, exhausted["id"]) == ["delivery.deferred", "delivery.deferred", "delivery.failed"]

    # only dead deliveries can be retried; agents and channel keys cannot
    assert (await notify.post(f"/v1/deliveries/{ok['id']}/retry", headers=ADMIN)).status_code == 409
    assert (await notify.post(f"/v1/deliveries/{dead['id']}/retry", headers=AGENT)).status_code == 403
    assert (await notify.post(f"/v1/deliveries/{dead['id']}/retry", headers=CHANNEL)).status_code == 403
    assert (await notify.post(f"/v1/deliveries/{uuid.uuid4()}/retry", headers=ADMIN)).status_code == 404
    notify.email.script["refused@example.com"] = ["sent"]
    answer = await notify.post(f"/v1/deliveries/{dead['id']}/retry", headers=SUPERVISOR)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "queued" and answer.json()["max_attempts"] == 4
    revived = await wait_for(lambda: _delivery_of(notify, refused.data.message_id, "sent"), timeout=30)
    assert revived["attempts"] == 2 and revived["reason"] is None
    assert await _outbox_types(db, dead["id"]) == ["delivery.failed", "delivery.deferred", "delivery.succeeded"]


async def test_only_replies_report_their_outcome(notify, db, notify_db) -> None:
    """delivery.* is for ticket-svc's delivery_status of agent messages; a notification's outcome
    is notify-svc's own record (the notification log, GET /v1/deliveries), published to nobody."""
    notify.email.script = {"broken@example.com": ["transient", "permanent"]}
    reply = reply_event()
    await produce(notify.bootstrap, notify.topics, reply)
    conn = await _raw(notify_db)
    try:
        notified = []
        for to in ("agent@example.com", "broken@example.com"):
            notified.append(await repository.insert(
                conn, delivery_id=uuid.uuid4(), kind="notification", channel="email", destination="smtp",
                dedupe_key=f"notification:{to}", payload={"route": {"to": [to]}, "subject": "New ticket",
                                                           "body_text": "Ticket #7"},
                max_attempts=3, ticket_id=reply.data.ticket_id))
    finally:
        await conn.close()
    sent = await wait_for(lambda: _delivery_of(notify, reply.data.message_id, "sent"), timeout=30)

    async def settled() -> list[dict] | None:
        items = (await notify.get("/v1/deliveries", params={"kind": "notification"}, headers=ADMIN)).json()["items"]
        return items if sorted(i["status"] for i in items) == ["failed", "sent"] else None

    notifications = await wait_for(settled, timeout=30)
    assert {i["id"] for i in notifications} == {str(i) for i in notified}
    assert max(i["attempts"] for i in notifications) == 2  # one deferred, then dead: still nothing published
    assert await _outbox_types(db, sent["id"]) == ["delivery.succeeded"]
    for item in notifications:
        assert await _outbox_types(db, item["id"]) == []
    [dead] = [i for i in notifications if i["status"] == "failed"]
    retried = await notify.post(f"/v1/deliveries/{dead['id']}/retry", headers=ADMIN)
    assert retried.status_code == 200 and retried.json()["status"] == "queued"
    assert await _outbox_types(db, retried.json()["id"]) == []


async def test_a_notifications_attempt_is_recorded_without_a_transaction(notify, notify_db, monkeypatch) -> None:
    """The delivery's row and its log entry are one statement: a notification's attempt runs it
    alone (no BEGIN and COMMIT around it); a reply's, which writes its status event too, in a
    transaction."""
    seen: dict[str, bool] = {}
    finish = repository.finish

    async def watched(conn, delivery_id, **kwargs):  # type: ignore[no-untyped-def]
        seen[str(delivery_id)] = conn.is_in_transaction()
        return await finish(conn, delivery_id, **kwargs)

    monkeypatch.setattr(repository, "finish", watched)
    reply = reply_event()
    await produce(notify.bootstrap, notify.topics, reply)
    conn = await _raw(notify_db)
    try:
        notified = await repository.insert(
            conn, delivery_id=uuid.uuid4(), kind="notification", channel="email", destination="smtp",
            dedupe_key="notification:alone@example.com", payload={"route": {"to": ["alone@example.com"]},
                                                                  "subject": "New ticket", "body_text": "Ticket #7"},
            max_attempts=3, ticket_id=reply.data.ticket_id)
    finally:
        await conn.close()
    sent = await wait_for(lambda: _delivery_of(notify, reply.data.message_id, "sent"), timeout=30)

    async def notification_sent() -> dict | None:
        found = (await notify.get(f"/v1/deliveries/{notified}", headers=ADMIN)).json()
        return found if found["status"] == "sent" else None

    detail = await wait_for(notification_sent, timeout=30)
    assert [(a["number"], a["outcome"]) for a in detail["attempts_log"]] == [(1, "sent")]
    assert seen == {str(notified): False, sent["id"]: True}


async def test_unknown_channels_and_missing_addresses_are_undeliverable(notify) -> None:
    chat = reply_event(channel="chat", to="visitor-1")
    phone = reply_event(channel="phone", to="no-address")
    await produce(notify.bootstrap, notify.topics, chat, phone)
    for event in (chat, phone):
        found = await wait_for(lambda e=event: _delivery_of(notify, e.data.message_id, "undeliverable"), timeout=30)
        assert "no outbound adapter" in found["reason"]


async def test_per_destination_concurrency(notify) -> None:
    notify.email.delay = 0.3
    evts = [reply_event(to=f"c{i}@example.com") for i in range(8)]
    await produce(notify.bootstrap, notify.topics, *evts)
    await wait_for(lambda: asyncio.sleep(0, len(notify.email.sent) == 8), timeout=30)
    assert notify.email.max_in_flight == 2  # NOTIFY_DESTINATION_CONCURRENCY


async def test_list_and_read_rules(notify) -> None:
    for headers, status in ((AGENT, 403), (CHANNEL, 403), (ADMIN, 200), (SUPERVISOR, 200)):
        assert (await notify.get("/v1/deliveries", headers=headers)).status_code == status
    assert (await notify.get("/v1/deliveries?status=bogus", headers=ADMIN)).status_code == 422
    assert (await notify.get("/v1/deliveries?cursor=xyz", headers=ADMIN)).status_code == 400
    assert (await notify.get(f"/v1/deliveries/{uuid.uuid4()}", headers=ADMIN)).status_code == 404
    assert (await notify.get("/v1/deliveries?bogus=1", headers=ADMIN)).status_code == 422

    evts = [reply_event(to=f"p{i}@example.com") for i in range(3)]
    await produce(notify.bootstrap, notify.topics, *evts)
    for event in evts:  # recorded, not only handed to the adapter
        await wait_for(lambda e=event: _delivery_of(notify, e.data.message_id, "sent"), timeout=30)
    first = (await notify.get("/v1/deliveries?limit=2&status=sent&channel=email", headers=ADMIN)).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = (await notify.get(f"/v1/deliveries?limit=2&cursor={first['next_cursor']}", headers=ADMIN)).json()
    ids = [i["id"] for i in first["items"] + rest["items"]]
    assert len(ids) == len(set(ids)) == 3


# ---- the claim, directly on the database ------------------------------------------------------


async def _raw(notify_db: str) -> asyncpg.Connection:
    from sqlalchemy.engine import make_url

    from helpdesk_common.db import _init_raw_connection

    conn = await asyncpg.connect(make_url(notify_db).set(drivername="postgresql").render_as_string(
        hide_password=False))
    await _init_raw_connection(conn)
    return conn


@pytest.mark.usefixtures("db")
async def test_concurrent_claims_take_disjoint_rows_and_an_expired_lease_is_taken_again(notify_db) -> None:
    from alembic import command

    from helpdesk_common.migrate import alembic_config

    await asyncio.to_thread(command.upgrade, alembic_config("notify_svc", notify_db), "head")
    conns = [await _raw(notify_db) for _ in range(3)]
    try:
        for i in range(30):
            await repository.insert(conns[0], delivery_id=uuid.uuid4(), kind="reply", channel="email",
                                    destination="smtp", dedupe_key=f"k{i}", payload={"i": i}, max_attempts=8)

        async def claim(conn):
            async with conn.transaction():
                return await repository.claim_due(conn, limit=12, lease_s=60)

        batches = await asyncio.gather(*(claim(c) for c in conns))
        ids = [r["id"] for batch in batches for r in batch]
        assert len(ids) == len(set(ids)) == 30  # nobody took a row twice
        assert await claim(conns[0]) == []  # all leased

        # a dispatcher died after sending: its lease runs out and the row is claimed again, with
        # the same id (the receiver sees the same Message-ID / webhook-id) and the next attempt number
        victim = ids[0]
        await conns[0].execute("UPDATE deliveries SET lease_until = now() - interval '1 second' WHERE id = $1", victim)
        [again] = await claim(conns[1])
        assert again["id"] == victim and again["attempts"] == 2
        # the dead dispatcher's late record does not overwrite the new claim
        assert await repository.finish(conns[0], victim, attempt=1, status="sent", next_attempt_at=None,
                                       reason=None, code=None, provider_id=None) is None
        # ... and written with its attempt's record (one statement), the record is kept all the same
        late = repository.Attempt(started_at=datetime.now(UTC), duration_ms=12.5, outcome="sent", code="250",
                                  error=None)
        assert await repository.finish(conns[0], victim, attempt=1, status="sent", next_attempt_at=None,
                                       reason=None, code="250", provider_id=None, logged=late) is None
        kept = await conns[0].fetchrow("SELECT outcome, code, duration_ms FROM delivery_attempts "
                                       "WHERE delivery_id = $1 AND number = 1", victim)
        assert tuple(kept) == ("sent", "250", 12.5)
        # the current claim's own record finishes the row
        mine = repository.Attempt(started_at=datetime.now(UTC), duration_ms=3.0, outcome="sent", code="250", error=None)
        done = await repository.finish(conns[1], victim, attempt=2, status="sent", next_attempt_at=None,
                                       reason=None, code="250", provider_id=None, logged=mine)
        assert done["status"] == "sent" and done["attempts"] == 2
        assert await conns[1].fetchval("SELECT count(*) FROM delivery_attempts WHERE delivery_id = $1", victim) == 2
    finally:
        for c in conns:
            await c.close()


# ---- webhooks --------------------------------------------------------------------------------


class Receiver:
    """A webhook receiver on 127.0.0.1 answering the statuses of ``script`` in turn (the last repeats)."""

    def __init__(self, *script: int) -> None:
        self.script = list(script) or [204]
        self.got: list[tuple[dict[str, str], bytes]] = []

    async def handle(self, request):
        from aiohttp import web

        self.got.append((dict(request.headers), await request.read()))
        return web.Response(status=self.script[min(len(self.got) - 1, len(self.script) - 1)])

    async def __aenter__(self):
        from aiohttp import web

        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"
        return self

    async def __aexit__(self, *exc):
        await self._runner.cleanup()


async def _subscribe(client, url: str, *types: str) -> dict:
    answer = await client.post("/v1/webhooks", headers=ADMIN, json={"url": url, "event_types": list(types)})
    assert answer.status_code == 201, answer.text
    return answer.json()


async def _webhook_deliveries(client, subscription_id: str, status: str | None = None) -> list[dict]:
    params = {"kind": "webhook", "subscription_id": subscription_id, "limit": 100}
    items = (await client.get("/v1/deliveries", params=params, headers=ADMIN)).json()["items"]
    assert all(d["subscription_id"] == subscription_id for d in items)
    return [d for d in items if status is None or d["status"] == status]


async def test_events_fan_out_to_signed_webhook_deliveries(notify) -> None:
    from standardwebhooks.webhooks import Webhook

    ticket_id = uuid.uuid4()
    created = events.TicketCreated(source="ticket-svc", subject=str(ticket_id), data=events.TicketCreatedData(
        ticket_id=ticket_id, subject="打印机坏了 / printer broken", status="new", priority="normal",
        requester=events.Requester(name="张三", email="zhang@example.com"), created_by="channel:x",
        created_at=datetime.now(UTC), number=42))
    async with Receiver(204) as ok, Receiver(500, 204) as flaky, Receiver(410) as gone:
        sub_ok = await _subscribe(notify, ok.url, "ticket.created")
        sub_flaky = await _subscribe(notify, flaky.url, "ticket.created")
        sub_gone = await _subscribe(notify, gone.url, "ticket.created")
        await asyncio.sleep(0.6)  # the consumer takes the newly subscribed types (NOTIFY_WEBHOOK_TYPES_REFRESH_S)
        await produce(notify.bootstrap, notify.topics, created, reply_event())

        [delivered] = await wait_for(lambda: _webhook_deliveries(notify, sub_ok["id"], "sent"), timeout=30)
        [(headers, body)] = ok.got
        assert headers["webhook-id"] == delivered["id"]  # the delivery id: stable across attempts
        event = Webhook(sub_ok["secret"]).verify(body, headers)
        assert event["type"] == "ticket.created" and event["data"]["number"] == 42
        assert delivered["ticket_id"] == str(ticket_id) and delivered["event_id"] == str(created.id)

        # 500 then 204: one retry on the Standard Webhooks schedule (5 s), the same webhook-id twice
        [retried] = await wait_for(lambda: _webhook_deliveries(notify, sub_flaky["id"], "sent"), timeout=40)
        assert retried["attempts"] == 2
        assert [h["webhook-id"] for h, _ in flaky.got] == [retried["id"]] * 2

        # 410 Gone: the delivery fails and the subscription is disabled
        [dead] = await wait_for(lambda: _webhook_deliveries(notify, sub_gone["id"], "failed"), timeout=30)
        assert dead["attempts"] == 1 and "410" in dead["reason"]
        subscription = (await notify.get(f"/v1/webhooks/{sub_gone['id']}", headers=ADMIN)).json()
        assert subscription["enabled"] is False and "410" in subscription["disabled_reason"]

        # the same event again queues nothing new (reply requests cannot even be subscribed to:
        # test_webhooks_api.py)
        await produce(notify.bootstrap, notify.topics, created)
        await asyncio.sleep(1.5)
        assert len(ok.got) == 1
