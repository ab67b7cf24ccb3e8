"""notify-svc's erasure through the real broker: the person's survey delivery (address, rendered
body) and the ticket projection's requester are scrubbed, published outbox rows naming them are
purged, a redelivered request acknowledges again, and the scanner finds the person nowhere in
notify-svc's database; the export lists their deliveries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from helpdesk_common import erasure, events
from helpdesk_common.identity import Principal
from helpdesk_common.pii_scan import scan_database
from helpdesk_common.testing import identity_headers, produce, running_app, service_env, wait_for

from notify_svc.channels.base import OutboundMessage, SendResult

pytestmark = pytest.mark.timeout(180)

ADMIN = identity_headers(Principal(kind="user", id=str(uuid.uuid4()), role="admin"))
NAME, EMAIL = "Chen Meimei", "chen.meimei@example.cn"


class RecordingAdapter:
    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.sent: list[OutboundMessage] = []

    async def send(self, message: OutboundMessage) -> SendResult:
        self.sent.append(message)
        return SendResult("sent", provider_id=f"p-{len(self.sent)}")

    async def close(self) -> None:
        return None


@pytest.fixture
async def notify(infra, notify_db, secret_key, monkeypatch):
    topics = service_env(monkeypatch, infra, "NOTIFY_", notify_db)
    monkeypatch.setenv("NOTIFY_SECRET_KEY", secret_key)
    monkeypatch.setenv("NOTIFY_DISPATCHER_POLL_INTERVAL_S", "0.2")
    from notify_svc.config import Settings
    from notify_svc.main import create_app

    email = RecordingAdapter("email")
    app = create_app(Settings(), adapters={"email": email, "wechat": RecordingAdapter("wechat")})
    async with running_app(app) as client:
        client.topics, client.email, client.bootstrap, client.app = topics, email, infra.kafka_bootstrap, app
        yield client


async def test_erasure_scrubs_deliveries_and_projection(notify, notify_db):
    cid, ticket_id, survey_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    created = events.TicketCreated(source="ticket-svc", subject=str(ticket_id), data=events.TicketCreatedData(
        ticket_id=ticket_id, subject=f"Broken kettle ({NAME})", status="new", priority="normal", channel="email",
        requester=events.Requester(name=NAME, email=EMAIL), customer_id=cid, created_by="channel:email",
        created_at=now, number=7))
    survey = events.SurveyDeliveryRequested(source="customer-svc", subject=str(survey_id),
                                            data=events.SurveyDeliveryRequestedData(
        survey_id=survey_id, kind="csat", customer_id=cid, ticket_id=ticket_id, number=7, subject="Broken kettle",
        language="en", channel="email", recipient=events.Requester(name=NAME, email=EMAIL), route={"to": [EMAIL]},
        link=f"https://help.example.com/v1/surveys/tok-{survey_id}", expires_at=now + timedelta(days=7), at=now))
    await produce(notify.bootstrap, notify.topics, created, survey)
    await wait_for(lambda: _sent(notify), timeout=60)
    needles = erasure.needles(name=NAME, identities=[("email", EMAIL)])
    assert await scan_database(notify_db, needles)

    export = await notify.get(f"/v1/privacy/customers/{cid}/export", headers=ADMIN)
    assert export.status_code == 200, export.text
    assert export.json()["deliveries"] and all(EMAIL in str(d["payload"]) for d in export.json()["deliveries"])

    ask = events.PrivacyErasureRequested(source="customer-svc", subject=str(cid), data=events.ErasureRequestedData(
        request_id=uuid.uuid4(), customer_id=cid, identities=[], requested_at=now))
    again = events.PrivacyErasureRequested(source="customer-svc", subject=str(cid), data=ask.data)
    await produce(notify.bootstrap, notify.topics, ask, again)

    async def acknowledged():
        async with notify.app.state.runtime.raw_connection() as conn:
            rows = await conn.fetch("SELECT 1 FROM outbox WHERE event_type = 'privacy.erasure_completed'")
        return len(rows) == 2

    await wait_for(acknowledged, timeout=60)
    leftovers = await scan_database(notify_db, needles)
    assert leftovers == [], "\n".join(map(str, leftovers))


async def _sent(notify):
    return bool(notify.email.sent)


async def test_a_restricted_customers_deliveries_wait(notify):
    """customer.restricted (an erasure asked, a request suspended): deliveries about the customer's
    tickets stay queued, and go once the restriction ends."""
    import asyncio

    cid, ticket_id, survey_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    created = events.TicketCreated(source="ticket-svc", subject=str(ticket_id), data=events.TicketCreatedData(
        ticket_id=ticket_id, subject="Kettle", status="new", priority="normal", channel="email",
        requester=events.Requester(name=NAME, email=EMAIL), customer_id=cid, created_by="channel:email",
        created_at=now, number=8))

    def restricted(flag):
        return events.CustomerRestricted(source="customer-svc", subject=str(cid), data=events.CustomerRestrictedData(
            customer_id=cid, restricted=flag, at=datetime.now(UTC)))

    survey = events.SurveyDeliveryRequested(source="customer-svc", subject=str(survey_id),
                                            data=events.SurveyDeliveryRequestedData(
        survey_id=survey_id, kind="csat", customer_id=cid, ticket_id=ticket_id, number=8, subject="Kettle",
        language="en", channel="email", recipient=events.Requester(name=NAME, email=EMAIL), route={"to": [EMAIL]},
        link=f"https://help.example.com/v1/surveys/tok-{survey_id}", expires_at=now + timedelta(days=7), at=now))
    await produce(notify.bootstrap, notify.topics, created, restricted(True))

    async def held():
        async with notify.app.state.runtime.raw_connection() as conn:
            return await conn.fetchval("SELECT count(*) FROM restricted_customers WHERE customer_id = $1", cid)

    await wait_for(held, timeout=60)
    await produce(notify.bootstrap, notify.topics, survey)

    async def queued():
        async with notify.app.state.runtime.raw_connection() as conn:
            return await conn.fetchval("SELECT status FROM deliveries WHERE ticket_id = $1 AND kind = 'survey'",
                                       ticket_id)

    assert await wait_for(queued, timeout=60) == "queued"
    await asyncio.sleep(2)  # the dispatcher polls every 0.2 s: it would have sent it by now
    assert await queued() == "queued" and not notify.email.sent
    await produce(notify.bootstrap, notify.topics, restricted(False))
    await wait_for(lambda: _sent(notify), timeout=60)

    async def sent():
        return await queued() == "sent"

    await wait_for(sent, timeout=30)
