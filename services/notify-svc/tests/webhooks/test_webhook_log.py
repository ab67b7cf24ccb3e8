"""A subscription's delivery log, replay, and disabling (410 Gone, 5 days of failures, an admin)
with ``webhook.disabled``: the whole service on the real database and broker, receivers on
127.0.0.1 (allow-listed). The 5 days are the database's: a test moves ``failing_since`` back."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiohttp import web
from sqlalchemy import text

from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, produce, running_app, service_env, wait_for

pytestmark = pytest.mark.timeout(120)

ADMIN = identity_headers(Principal(kind="user", id=str(uuid.uuid4()), role="admin"))
OTHER_ADMIN = identity_headers(Principal(kind="user", id=str(uuid.uuid4()), role="admin"))
SUPERVISOR = identity_headers(Principal(kind="user", id=str(uuid.uuid4()), role="supervisor"))
AGENT = identity_headers(Principal(kind="user", id=str(uuid.uuid4()), role="agent"))
CHANNEL = identity_headers(Principal(kind="channel", id=str(uuid.uuid4()), channel="api"))
#: parts of a receiver's URL that only the URL may carry (a token in the path and the query)
TOKEN_PATH, TOKEN_QUERY = "tok_9f8e7d6c5b4a", "sig_0a1b2c3d4e5f"


class Receiver:
    """A webhook receiver on 127.0.0.1 answering the statuses of ``script`` in turn (the last
    repeats), after ``delay`` seconds; its URL carries a token in its path and query."""

    def __init__(self, *script: int, delay: float = 0.0, retry_after: int | None = None) -> None:
        self.script = list(script) or [204]
        self.delay = delay
        self.retry_after = retry_after
        self.got: list[tuple[dict[str, str], bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append((dict(request.headers), await request.read()))
        status = self.script[min(len(self.got) - 1, len(self.script) - 1)]
        if self.delay:
            await asyncio.sleep(self.delay)
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after and status >= 300 else {}
        return web.Response(status=status, headers=headers)

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/in/{TOKEN_PATH}?key={TOKEN_QUERY}"
        return self

    async def __aexit__(self, *exc) -> None:
        await self._runner.cleanup()


@pytest.fixture
async def notify(infra, notify_db, secret_key, monkeypatch):
    topics = service_env(monkeypatch, infra, "NOTIFY_", notify_db)
    monkeypatch.setenv("NOTIFY_SECRET_KEY", secret_key)
    monkeypatch.setenv("NOTIFY_WEBHOOK_ALLOW_NETWORKS", "127.0.0.1/32")
    monkeypatch.setenv("NOTIFY_WEBHOOK_TYPES_REFRESH_S", "0.2")
    monkeypatch.setenv("NOTIFY_DISPATCHER_POLL_INTERVAL_S", "0.2")
    from notify_svc.config import Settings
    from notify_svc.main import create_app

    async with running_app(create_app(Settings())) as client:
        client.topics = topics
        client.bootstrap = infra.kafka_bootstrap
        yield client


def ticket_created() -> events.TicketCreated:
    ticket_id = uuid.uuid4()
    return events.TicketCreated(source="ticket-svc", subject=str(ticket_id), data=events.TicketCreatedData(
        ticket_id=ticket_id, subject="打印机坏了", status="new", priority="normal",
        requester=events.Requester(name="张三", email="zhang@example.com"), created_by="channel:x",
        created_at=datetime.now(UTC), number=1))


async def _subscribe(client, url: str) -> dict:
    answer = await client.post("/v1/webhooks", headers=ADMIN, json={"url": url, "event_types": ["ticket.created"]})
    assert answer.status_code == 201, answer.text
    await asyncio.sleep(0.6)  # the consumer takes the newly subscribed type (NOTIFY_WEBHOOK_TYPES_REFRESH_S)
    return answer.json()


async def _log(client, subscription_id: str, **params) -> dict:
    answer = await client.get(f"/v1/webhooks/{subscription_id}/deliveries", params=params, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def _items(client, subscription_id: str, status: str | None = None, attempts: int | None = None) -> list[dict]:
    items = (await _log(client, subscription_id, limit=100))["items"]
    return [d for d in items if (status is None or d["status"] == status)
            and (attempts is None or d["attempts"] == attempts)]


async def _detail(client, subscription_id: str, delivery_id: str) -> dict:
    answer = await client.get(f"/v1/webhooks/{subscription_id}/deliveries/{delivery_id}", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def _subscription(client, subscription_id: str) -> dict:
    return (await client.get(f"/v1/webhooks/{subscription_id}", headers=ADMIN)).json()


async def _outbox(db, event_type: str) -> list[dict]:
    async with db.connect() as conn:
        rows = (await conn.execute(text("SELECT topic, key, payload FROM outbox WHERE event_type = :t ORDER BY seq"),
                                   {"t": event_type})).all()
    return [{"topic": r.topic, "key": r.key, "raw": bytes(r.payload), **orjson.loads(r.payload)} for r in rows]


def _problem(answer, status: int, kind: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"].endswith("/" + kind)


async def test_the_log_pages_newest_first_and_shows_what_the_deliveries_api_shows(notify) -> None:
    async with Receiver(204) as mine, Receiver(204) as theirs:
        sub = await _subscribe(notify, mine.url)
        other = await _subscribe(notify, theirs.url)
        await produce(notify.bootstrap, notify.topics, *(ticket_created() for _ in range(3)))
        sent = await wait_for(lambda: _all_sent(notify, sub["id"], 3), timeout=30)
        theirs_delivery = (await wait_for(lambda: _all_sent(notify, other["id"], 3), timeout=30))[0]

    first = await _log(notify, sub["id"], limit=2)
    rest = await _log(notify, sub["id"], limit=2, cursor=first["next_cursor"])
    assert len(first["items"]) == 2 and first["next_cursor"] and rest["next_cursor"] is None
    page_ids = [d["id"] for d in first["items"] + rest["items"]]
    assert sorted(page_ids) == sorted(d["id"] for d in sent)
    created = [d["created_at"] for d in first["items"] + rest["items"]]
    assert created == sorted(created, reverse=True)
    # the same item shape as GET /v1/deliveries
    everything = (await notify.get("/v1/deliveries", params={"subscription_id": sub["id"]}, headers=ADMIN)).json()
    assert {d["id"]: d for d in everything["items"]} == {d["id"]: d for d in first["items"] + rest["items"]}
    assert (await _log(notify, sub["id"], status="failed"))["items"] == []

    detail = await _detail(notify, sub["id"], first["items"][0]["id"])
    assert detail["replays"] == 0 and detail["subscription_id"] == sub["id"]
    [attempt] = detail["attempts_log"]
    assert (attempt["number"], attempt["outcome"], attempt["code"], attempt["trigger"]) == (1, "sent", "204", "schedule")
    assert attempt["duration_ms"] >= 0 and attempt["error"] is None

    # 404: an unknown subscription, an unknown delivery, another subscription's delivery
    _problem(await notify.get(f"/v1/webhooks/{uuid.uuid4()}/deliveries", headers=ADMIN), 404, "not-found")
    _problem(await notify.get(f"/v1/webhooks/{uuid.uuid4()}/deliveries/{detail['id']}", headers=ADMIN),
             404, "not-found")
    _problem(await notify.get(f"/v1/webhooks/{sub['id']}/deliveries/{uuid.uuid4()}", headers=ADMIN), 404, "not-found")
    _problem(await notify.get(f"/v1/webhooks/{sub['id']}/deliveries/{theirs_delivery['id']}", headers=ADMIN),
             404, "not-found")
    _problem(await notify.post(f"/v1/webhooks/{sub['id']}/deliveries/{theirs_delivery['id']}/replay",
                               headers=ADMIN), 404, "not-found")
    _problem(await notify.get(f"/v1/webhooks/{sub['id']}/deliveries", params={"status": "lost"}, headers=ADMIN),
             422, "validation-error")
    _problem(await notify.get(f"/v1/webhooks/{sub['id']}/deliveries", params={"cursor": "xyz"}, headers=ADMIN),
             400, "invalid-cursor")
    # admins only
    for headers in (SUPERVISOR, AGENT, CHANNEL):
        for answer in (await notify.get(f"/v1/webhooks/{sub['id']}/deliveries", headers=headers),
                       await notify.get(f"/v1/webhooks/{sub['id']}/deliveries/{detail['id']}", headers=headers),
                       await notify.post(f"/v1/webhooks/{sub['id']}/deliveries/{detail['id']}/replay",
                                         headers=headers)):
            _problem(answer, 403, "forbidden")

    # a deleted subscription's log is gone with it (its rows stay in /v1/deliveries)
    assert (await notify.delete(f"/v1/webhooks/{sub['id']}", headers=ADMIN)).status_code == 204
    _problem(await notify.get(f"/v1/webhooks/{sub['id']}/deliveries", headers=ADMIN), 404, "not-found")
    _problem(await notify.get(f"/v1/webhooks/{sub['id']}/deliveries/{detail['id']}", headers=ADMIN), 404, "not-found")


async def _all_sent(client, subscription_id: str, count: int) -> list[dict] | None:
    items = await _items(client, subscription_id, "sent")
    return items if len(items) == count else None


async def test_replay_resends_with_the_same_webhook_id_and_a_fresh_signature(notify, db) -> None:
    from standardwebhooks.webhooks import Webhook

    async with Receiver(204) as receiver:
        sub = await _subscribe(notify, receiver.url)
        await produce(notify.bootstrap, notify.topics, ticket_created())
        [delivery] = await wait_for(lambda: _items(notify, sub["id"], "sent"), timeout=30)
        await asyncio.sleep(1.1)  # the replay's timestamp is a later second

        url = f"/v1/webhooks/{sub['id']}/deliveries/{delivery['id']}/replay"
        receiver.delay = 1.5  # the replay stays in flight long enough to be asked for again
        answer = await notify.post(url, headers=ADMIN)
        assert answer.status_code == 202, answer.text
        queued = answer.json()
        assert queued["id"] == delivery["id"] and queued["status"] == "queued" and queued["replays"] == 1
        assert queued["max_attempts"] == 1 + 8  # a fresh budget on the same row
        # not twice at once
        _problem(await notify.post(url, headers=ADMIN), 409, "delivery-in-progress")

        again = await wait_for(lambda: _items(notify, sub["id"], "sent", attempts=2), timeout=30)
        assert [d["id"] for d in again] == [delivery["id"]]
        assert len(receiver.got) == 2
        (first_headers, first_body), (replay_headers, replay_body) = receiver.got
        assert first_headers["webhook-id"] == replay_headers["webhook-id"] == delivery["id"]
        assert replay_body == first_body
        assert int(replay_headers["webhook-timestamp"]) > int(first_headers["webhook-timestamp"])
        assert replay_headers["webhook-signature"] != first_headers["webhook-signature"]
        Webhook(sub["secret"]).verify(replay_body, replay_headers)  # signed anew, and valid now

        detail = await _detail(notify, sub["id"], delivery["id"])
        assert [(a["number"], a["outcome"], a["trigger"]) for a in detail["attempts_log"]] == [
            (1, "sent", "schedule"), (2, "sent", "replay")]
        assert detail["replays"] == 1

        # Idempotency-Key: the same key answers the delivery as it is and sends nothing more
        receiver.delay = 0.0
        keyed = {**ADMIN, "Idempotency-Key": "replay-1"}
        answer = await notify.post(url, headers=keyed)
        assert answer.status_code == 202 and "idempotent-replayed" not in answer.headers
        await wait_for(lambda: _items(notify, sub["id"], "sent", attempts=3), timeout=30)
        repeated = await notify.post(url, headers=keyed)
        assert repeated.status_code == 202 and repeated.headers["idempotent-replayed"] == "true"
        assert repeated.json()["status"] == "sent" and repeated.json()["replays"] == 2
        await asyncio.sleep(1.0)
        assert len(receiver.got) == 3
        # the key is the caller's: another admin's same key is another request
        assert (await notify.post(url, headers={**OTHER_ADMIN, "Idempotency-Key": "replay-1"})).status_code == 202
        await wait_for(lambda: _items(notify, sub["id"], "sent", attempts=4), timeout=30)
        # the same key for another request
        await produce(notify.bootstrap, notify.topics, ticket_created())
        [second] = await wait_for(lambda: _items_other(notify, sub["id"], delivery["id"]), timeout=30)
        _problem(await notify.post(f"/v1/webhooks/{sub['id']}/deliveries/{second['id']}/replay", headers=keyed),
                 422, "idempotency-key-reused")

        # a disabled subscription is not replayed to; disabling said so (webhook.disabled, by an admin)
        patched = await notify.patch(f"/v1/webhooks/{sub['id']}", json={"enabled": False}, headers=ADMIN)
        assert patched.status_code == 200 and patched.json()["disabled_reason"] == "disabled by an admin"
        _problem(await notify.post(url, headers=ADMIN), 409, "webhook-disabled")
        [disabled] = await _outbox(db, "webhook.disabled")
        assert disabled["key"] == sub["id"] and disabled["topic"] == "deliveries.events"
        assert disabled["data"]["cause"] == "admin" and disabled["data"]["url_host"] == "127.0.0.1"
        assert disabled["data"]["failing_since"] is None
        assert TOKEN_PATH.encode() not in disabled["raw"] and TOKEN_QUERY.encode() not in disabled["raw"]
        # disabling again is no second event
        await notify.patch(f"/v1/webhooks/{sub['id']}", json={"enabled": False}, headers=ADMIN)
        assert len(await _outbox(db, "webhook.disabled")) == 1
        assert len(receiver.got) == 5

    # webhook deliveries report no delivery.* events (no consumer wants them)
    assert [e for e in await _outbox_deliveries(db) if e["data"]["kind"] == "webhook"] == []


async def _items_other(client, subscription_id: str, not_id: str) -> list[dict]:
    return [d for d in await _items(client, subscription_id, "sent") if d["id"] != not_id]


async def _outbox_deliveries(db) -> list[dict]:
    async with db.connect() as conn:
        rows = (await conn.execute(text("SELECT payload FROM outbox WHERE event_type LIKE 'delivery.%'"))).all()
    return [orjson.loads(r.payload) for r in rows]


async def _set(db, sql: str, **params) -> None:
    async with db.begin() as conn:
        await conn.execute(text(sql), params)


async def test_five_days_of_failures_disable_the_subscription_with_an_event(notify, db) -> None:
    # Retry-After: an hour, so that no retry comes unless the test makes it due
    async with Receiver(500, retry_after=3600) as receiver:
        sub = await _subscribe(notify, receiver.url)
        started = datetime.now(UTC)
        await produce(notify.bootstrap, notify.topics, ticket_created(), ticket_created())
        due, later = await wait_for(lambda: _all_queued_after_one(notify, sub["id"]), timeout=30)
        before = await _subscription(notify, sub["id"])
        # the run of failures began with the first of them; it is delivery state, not configuration
        assert started <= datetime.fromisoformat(before["failing_since"]) <= datetime.now(UTC)
        assert before["enabled"] is True and before["version"] == sub["version"]

        # the clock: the run began 5 days ago; one delivery's retry is due now, the other stays queued
        since = datetime.now(UTC) - timedelta(days=5, minutes=1)
        await _set(db, "UPDATE webhook_subscriptions SET failing_since = :s WHERE id = :id", s=since, id=sub["id"])
        await _set(db, "UPDATE deliveries SET next_attempt_at = now() WHERE id = :id", id=due["id"])

        disabled = await wait_for(lambda: _disabled(notify, sub["id"]), timeout=30)
    assert disabled["disabled_reason"].startswith("failing since " + since.strftime("%Y-%m-%dT%H:%M:%S"))
    assert disabled["version"] == sub["version"] + 1
    # the failing delivery and the one still queued end undeliverable: nothing will be sent for them
    for delivery, attempts in ((due, 2), (later, 1)):
        detail = await _detail(notify, sub["id"], delivery["id"])
        assert detail["status"] == "undeliverable" and detail["reason"] == "the webhook subscription is disabled"
        assert [(a["outcome"], a["code"]) for a in detail["attempts_log"]] == [("transient", "500")] * attempts
    assert len(receiver.got) == 3

    [event] = await _outbox(db, "webhook.disabled")
    assert event["key"] == sub["id"] and event["subject"] == sub["id"] and event["topic"] == "deliveries.events"
    data = event["data"]
    assert (data["subscription_id"], data["url_host"], data["cause"]) == (sub["id"], "127.0.0.1", "failing")
    assert datetime.fromisoformat(data["failing_since"]) == since and data["reason"] == disabled["disabled_reason"]
    assert TOKEN_PATH.encode() not in event["raw"] and TOKEN_QUERY.encode() not in event["raw"]
    assert events.decode(event["raw"]).type == "webhook.disabled"  # the contract reads it back
    assert await _outbox_deliveries(db) == []  # webhook outcomes are not published

    # enabling again is a fresh start: no failure history
    enabled = (await notify.patch(f"/v1/webhooks/{sub['id']}", json={"enabled": True}, headers=ADMIN)).json()
    assert enabled["enabled"] is True and enabled["failing_since"] is None and enabled["disabled_reason"] is None


async def _all_queued_after_one(client, subscription_id: str) -> list[dict] | None:
    items = await _items(client, subscription_id, "queued", attempts=1)
    return items if len(items) == 2 and all(i["last_code"] == "500" for i in items) else None


async def _disabled(client, subscription_id: str) -> dict | None:
    found = await _subscription(client, subscription_id)
    return None if found["enabled"] else found


async def test_a_success_ends_the_run_of_failures(notify, db) -> None:
    async with Receiver(500, 204, retry_after=3600) as receiver:
        sub = await _subscribe(notify, receiver.url)
        await produce(notify.bootstrap, notify.topics, ticket_created())
        [delivery] = await wait_for(lambda: _items(notify, sub["id"], "queued", attempts=1), timeout=30)
        assert (await _subscription(notify, sub["id"]))["failing_since"] is not None
        # four days of failures: not yet five
        await _set(db, "UPDATE webhook_subscriptions SET failing_since = now() - interval '4 days' WHERE id = :id",
                   id=sub["id"])
        await _set(db, "UPDATE deliveries SET next_attempt_at = now() WHERE id = :id", id=delivery["id"])
        await wait_for(lambda: _items(notify, sub["id"], "sent"), timeout=30)
    after = await _subscription(notify, sub["id"])
    assert after["enabled"] is True and after["failing_since"] is None and after["version"] == sub["version"]
    assert await _outbox(db, "webhook.disabled") == []


async def test_410_gone_disables_at_once_with_the_same_event(notify, db) -> None:
    from standardwebhooks.webhooks import Webhook

    async with Receiver(410) as receiver, Receiver(204) as watcher:
        sub = await _subscribe(notify, receiver.url)
        # another subscription watches for disabled ones: the event goes out like any other
        watching = await notify.post("/v1/webhooks", headers=ADMIN,
                                     json={"url": watcher.url, "event_types": ["webhook.disabled"]})
        assert watching.status_code == 201, watching.text
        await asyncio.sleep(0.6)
        await produce(notify.bootstrap, notify.topics, ticket_created())
        [dead] = await wait_for(lambda: _items(notify, sub["id"], "failed"), timeout=30)
        await wait_for(lambda: _items(notify, watching.json()["id"], "sent"), timeout=30)
    [(headers, body)] = watcher.got
    announced = Webhook(watching.json()["secret"]).verify(body, headers)
    assert announced["type"] == "webhook.disabled" and announced["data"]["subscription_id"] == sub["id"]
    assert TOKEN_PATH.encode() not in body and TOKEN_QUERY.encode() not in body
    assert dead["attempts"] == 1 and dead["last_code"] == "410"
    subscription = await _subscription(notify, sub["id"])
    assert subscription["enabled"] is False and subscription["disabled_reason"] == "the receiver answered 410 Gone"
    [event] = await _outbox(db, "webhook.disabled")
    assert (event["data"]["cause"], event["data"]["url_host"]) == ("gone", "127.0.0.1")
    assert event["data"]["reason"] == "the receiver answered 410 Gone" and event["data"]["failing_since"]
    _problem(await notify.post(f"/v1/webhooks/{sub['id']}/deliveries/{dead['id']}/replay", headers=ADMIN),
             409, "webhook-disabled")
