"""Survey invitations inside notify-svc, on the real broker and database: customer-svc's
``survey.delivery_requested`` goes through the service's one consumer and becomes one delivery of
kind ``survey`` per (survey, channel), sent by the dispatcher through the (recording) adapters as
an automatic message; a redelivered request sends nothing again; an opted-out customer, a
customer without any address and an expired link are recorded as undeliverable with their
reason; no ``delivery.*`` event is published and the link is never logged."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, produce, running_app, service_env, wait_for

from notify_svc.channels.base import OutboundMessage, SendResult

pytestmark = pytest.mark.timeout(180)

ADMIN = identity_headers(Principal(kind="user", id=str(uuid.uuid4()), role="admin"))


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

    email, wechat = RecordingAdapter("email"), RecordingAdapter("wechat")
    app = create_app(Settings(), adapters={"email": email, "wechat": wechat})
    async with running_app(app) as client:
        client.topics, client.email, client.wechat, client.bootstrap = topics, email, wechat, infra.kafka_bootstrap

        async def outbox_types():
            async with app.state.runtime.raw_connection() as conn:
                return [r["event_type"] for r in await conn.fetch("SELECT event_type FROM outbox")]

        client.outbox_types = outbox_types
        yield client


def request(*, kind: str = "csat", channel: str = "email", recipient: events.Requester | None = None,
            route: dict | None = None, language: str | None = "en", survey_id: uuid.UUID | None = None,
            link: str | None = None, expires_in: timedelta = timedelta(days=7)) -> events.SurveyDeliveryRequested:
    survey_id = survey_id or uuid.uuid4()
    ticket_id = uuid.uuid4() if kind == "csat" else None
    now = datetime.now(UTC)
    return events.SurveyDeliveryRequested(
        source="customer-svc", subject=str(survey_id), data=events.SurveyDeliveryRequestedData(
            survey_id=survey_id, kind=kind, customer_id=uuid.uuid4(), ticket_id=ticket_id,
            number=314 if kind == "csat" else None, subject="打印机坏了" if kind == "csat" else None,
            language=language, channel=channel,
            recipient=recipient if recipient is not None else events.Requester(name="Wang Fang",
                                                                               email="wang@example.com"),
            route=route if route is not None else {"to": ["wang@example.com"]},
            link=link or f"https://help.example.com/v1/surveys/tok-{survey_id}",
            expires_at=now + expires_in, at=now))


async def _deliveries(client, **params) -> list[dict]:
    answer = await client.get("/v1/deliveries", params={"kind": "survey", "limit": 100, **params}, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


async def test_a_csat_invitation_is_sent_once_by_email(notify, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    asked = request(language="zh-CN")
    await produce(notify.bootstrap, notify.topics, asked)

    async def sent():
        found = await _deliveries(notify, ticket_id=str(asked.data.ticket_id), status="sent")
        return found or None

    [delivery] = await wait_for(sent, timeout=60)
    [message] = notify.email.sent
    assert (delivery["kind"], delivery["channel"], delivery["attempts"]) == ("survey", "email", 1)
    assert delivery["event_id"] == str(asked.id) and message.delivery_id == uuid.UUID(delivery["id"])
    assert message.automatic and message.route == {"to": ["wang@example.com"]}
    assert message.subject == "您对本次服务满意吗？[#314]" and message.extra["number"] == 314
    assert asked.data.link in message.body_text and "打印机坏了" in message.body_text
    assert asked.data.link in message.body_html and message.language == "zh-CN"

    # the same request again (a redelivery past the inbox, a replay): nothing new
    await produce(notify.bootstrap, notify.topics, asked)
    await asyncio.sleep(1.5)
    assert len(notify.email.sent) == 1
    assert len(await _deliveries(notify, ticket_id=str(asked.data.ticket_id))) == 1
    # the outcome is notify-svc's record only: delivery.* is for replies
    assert not [t for t in await notify.outbox_types() if t.startswith("delivery.")]
    # the link is a bearer capability: in no log record, nor in the API's answers
    token = f"tok-{asked.data.survey_id}"
    assert not [r for r in caplog.records if token in r.getMessage() or token in str(r.__dict__)]
    detail = await notify.get(f"/v1/deliveries/{delivery['id']}", headers=ADMIN)
    assert detail.status_code == 200 and token not in detail.text


async def test_nps_on_wechat_and_the_ones_that_cannot_go(notify) -> None:
    wechat = request(kind="nps", channel="wechat", recipient=events.Requester(name="李雷"),
                     route={"openid": "o-li"}, language="zh-CN")
    nowhere = request(kind="nps", channel="dingtalk", recipient=events.Requester(name="韩梅梅"),
                      route={"sender_staff_id": "u1"})
    expired = request(expires_in=timedelta(seconds=-1))
    opted = request(recipient=events.Requester(email="Quiet@Example.com"), route={"to": ["Quiet@Example.com"]})
    answer = await notify.put("/v1/notification-preferences/emails/quiet@example.com", json={"opted_out": True},
                              headers=ADMIN)
    assert answer.status_code == 200, answer.text
    await produce(notify.bootstrap, notify.topics, wechat, nowhere, expired, opted)

    async def settled():
        found = await _deliveries(notify)
        return found if len(found) == 4 and not [d for d in found if d["status"] in ("queued", "sending")] else None

    found = {d["event_id"]: d for d in await wait_for(settled, timeout=60)}
    assert found[str(wechat.id)]["status"] == "sent" and found[str(wechat.id)]["channel"] == "wechat"
    [message] = notify.wechat.sent
    assert message.route == {"openid": "o-li"} and wechat.data.link in message.body_text
    assert "0-10" in message.body_text and "推荐" in message.body_text
    assert found[str(nowhere.id)]["status"] == "undeliverable"
    assert found[str(nowhere.id)]["attempts"] == 0 and "no e-mail address" in found[str(nowhere.id)]["reason"]
    assert found[str(expired.id)]["status"] == "undeliverable" and "expired" in found[str(expired.id)]["reason"]
    assert found[str(opted.id)]["status"] == "undeliverable"
    assert found[str(opted.id)]["reason"] == "the customer opted out of notifications"
    assert notify.email.sent == []
