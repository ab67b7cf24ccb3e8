"""A trigger's or an automation's ``call_webhook`` action (``ticket.webhook_requested``) on the
whole service, the real database and broker, a receiver on 127.0.0.1: one delivery to the named
subscription, whatever event types it selects, signed as every webhook delivery (Standard
Webhooks) with the event's envelope and the action's payload plus the ticket; an unknown or a
disabled subscription is recorded with the reason and never attempted; a redelivery sends once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import orjson
import pytest
from aiohttp import web

from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, produce, running_app, service_env, wait_for

pytestmark = pytest.mark.timeout(120)

ADMIN = identity_headers(Principal(kind="user", id=str(uuid.uuid4()), role="admin"))


class Receiver:
    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append((dict(request.headers), await request.read()))
        return web.Response(status=204)

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hooks/crm"
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
        client.topics, client.bootstrap = topics, infra.kafka_bootstrap
        yield client


def requested(webhook_id: uuid.UUID, payload: dict | None = None) -> events.TicketWebhookRequested:
    ticket_id = uuid.uuid4()
    return events.TicketWebhookRequested(source="ticket-svc", subject=str(ticket_id),
                                         data=events.TicketWebhookRequestedData(
        ticket_id=ticket_id, number=88, rule="同步到 CRM / sync to CRM", webhook_id=webhook_id,
        payload=payload if payload is not None else {"action": "refund", "amount": 1200, "ticket_id": "forged"},
        at=datetime.now(UTC)))


async def _deliveries(client, **params) -> list[dict]:
    answer = await client.get("/v1/deliveries", params={"kind": "webhook", "limit": 100, **params}, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


async def test_a_requested_webhook_is_delivered_signed_once(notify) -> None:
    from standardwebhooks.webhooks import Webhook

    async with Receiver() as receiver:
        # the subscription selects an unrelated type: the action names it, that is enough
        created = await notify.post("/v1/webhooks", headers=ADMIN,
                                    json={"url": receiver.url, "event_types": ["sla.breached"]})
        assert created.status_code == 201, created.text
        sub = created.json()
        order = requested(uuid.UUID(sub["id"]))
        await produce(notify.bootstrap, notify.topics, order, order)  # a redelivery too

        async def sent():
            return await _deliveries(notify, subscription_id=sub["id"], status="sent") or None

        [delivery] = await wait_for(sent, timeout=60)
        await asyncio.sleep(1.0)  # nothing more comes
    [(headers, body)] = receiver.got
    assert headers["webhook-id"] == delivery["id"]
    signed = Webhook(sub["secret"]).verify(body, headers)  # raises unless the signature is ours
    document = orjson.loads(body)
    assert signed == document
    assert document["type"] == "ticket.webhook_requested" and document["id"] == str(order.id)
    assert document["subject"] == str(order.data.ticket_id)
    assert document["data"] == {"action": "refund", "amount": 1200, "ticket_id": str(order.data.ticket_id),
                                "number": 88, "rule": "同步到 CRM / sync to CRM"}
    assert delivery["ticket_id"] == str(order.data.ticket_id) and delivery["event_id"] == str(order.id)
    # it is in the subscription's own delivery log
    log = await notify.get(f"/v1/webhooks/{sub['id']}/deliveries", headers=ADMIN)
    assert [d["id"] for d in log.json()["items"]] == [delivery["id"]]


async def test_an_unknown_or_disabled_subscription_is_recorded_not_retried(notify) -> None:
    created = await notify.post("/v1/webhooks", headers=ADMIN,
                                json={"url": "http://127.0.0.1:9/none", "event_types": ["sla.breached"]})
    assert created.status_code == 201, created.text
    sub = created.json()
    disabled = await notify.patch(f"/v1/webhooks/{sub['id']}", headers={**ADMIN, "If-Match": created.headers["ETag"]},
                                  json={"enabled": False})
    assert disabled.status_code == 200, disabled.text
    unknown, off = requested(uuid.uuid4()), requested(uuid.UUID(sub["id"]))
    await produce(notify.bootstrap, notify.topics, unknown, off)

    async def both():
        found = await _deliveries(notify)
        return found if len(found) == 2 else None

    found = {d["event_id"]: d for d in await wait_for(both, timeout=60)}
    await asyncio.sleep(1.0)
    gone, stopped = found[str(unknown.id)], found[str(off.id)]
    assert (gone["status"], gone["attempts"], gone["subscription_id"]) == ("failed", 0, str(unknown.data.webhook_id))
    assert "no webhook subscription" in gone["reason"]
    assert (stopped["status"], stopped["attempts"]) == ("undeliverable", 0)
    assert stopped["reason"] == "the webhook subscription is disabled"
    assert {d["id"]: d["status"] for d in await _deliveries(notify)} == {gone["id"]: "failed",
                                                                         stopped["id"]: "undeliverable"}
