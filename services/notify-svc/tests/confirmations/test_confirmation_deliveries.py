"""Confirmation requests inside notify-svc, on the real broker and database and a real SMTP
server on 127.0.0.1: ticket-svc's ``ticket.confirmation_requested`` goes through the service's one
consumer and becomes one delivery of kind ``confirmation`` per (step, channel); the e-mail threads
into the customer's conversation (``[#number]`` and the ticket's subject, In-Reply-To and
References as for replies) and says how to answer; a redelivered request sends nothing again;
the link is in no log record and no API answer; customers that cannot be reached, or opted out
of notifications, are recorded as undeliverable with the reason."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from aiosmtpd.controller import Controller

from helpdesk_common import events
from helpdesk_common.devstack import free_port
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, produce, running_app, service_env, wait_for

from notify_svc.channels.base import OutboundMessage, SendResult

pytestmark = pytest.mark.timeout(180)

ADMIN = identity_headers(Principal(kind="user", id=str(uuid.uuid4()), role="admin"))


class Sink:
    """aiosmtpd handler keeping what it accepted."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted for delivery"


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
def smtp():
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, sink
    finally:
        controller.stop()


@pytest.fixture
async def notify(infra, notify_db, secret_key, monkeypatch, smtp):
    controller, sink = smtp
    topics = service_env(monkeypatch, infra, "NOTIFY_", notify_db)
    monkeypatch.setenv("NOTIFY_SECRET_KEY", secret_key)
    monkeypatch.setenv("NOTIFY_DISPATCHER_POLL_INTERVAL_S", "0.2")
    from notify_svc.channels.email import EmailAdapter
    from notify_svc.config import Settings
    from notify_svc.main import create_app

    mail = EmailAdapter(smtp_url=f"smtp://127.0.0.1:{controller.port}?starttls=false",
                        support_address="support@acme.test", timeout_s=5)
    chat = RecordingAdapter("chat")
    app = create_app(Settings(), adapters={"email": mail, "chat": chat})
    async with running_app(app) as client:
        client.topics, client.sink, client.chat, client.bootstrap = topics, sink, chat, infra.kafka_bootstrap
        yield client


def asked(*, language: str = "zh-CN", channel: str = "email", recipient: events.Requester | None = None,
          route: dict | None = None, expires_in: timedelta = timedelta(days=3),
          step_id: uuid.UUID | None = None) -> events.TicketConfirmationRequested:
    ticket_id, step_id = uuid.uuid4(), step_id or uuid.uuid4()
    now = datetime.now(UTC)
    return events.TicketConfirmationRequested(
        source="ticket-svc", subject=str(ticket_id), data=events.TicketConfirmationRequestedData(
            ticket_id=ticket_id, number=4711, step_id=step_id, step="customer_confirmation",
            subject="退款未到账 / Refund missing", language=language, channel=channel,
            recipient=recipient if recipient is not None else events.Requester(name="王芳", email="wang@example.com"),
            route=route if route is not None else {
                "to": ["wang@example.com"], "from": "support@acme.test",
                "in_reply_to": "<c2@mail.example.com>", "references": ["<c1@mail.example.com>", "<c2@mail.example.com>"]},
            link=f"https://help.example.com/v1/confirmations/ctok-{step_id}", expires_at=now + expires_in, at=now))


async def _deliveries(client, **params) -> list[dict]:
    answer = await client.get("/v1/deliveries", params={"kind": "confirmation", "limit": 100, **params},
                              headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


async def test_the_customer_is_asked_once_by_email_in_their_thread(notify, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    request = asked()
    await produce(notify.bootstrap, notify.topics, request)

    async def sent():
        return await _deliveries(notify, ticket_id=str(request.data.ticket_id), status="sent") or None

    [delivery] = await wait_for(sent, timeout=60)
    assert (delivery["kind"], delivery["channel"], delivery["attempts"]) == ("confirmation", "email", 1)
    [(rcpt, raw)] = notify.sink.messages
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    assert rcpt == ["wang@example.com"]
    assert mail["Subject"] == "[#4711] 请确认问题是否已解决：退款未到账 / Refund missing"
    assert mail["In-Reply-To"] == "<c2@mail.example.com>"
    assert mail["References"] == "<c1@mail.example.com> <c2@mail.example.com>"
    assert mail["Auto-Submitted"] == "auto-generated" and mail["From"].addresses[0].addr_spec == "support@acme.test"
    assert mail["Message-ID"].startswith(f"<{delivery['id']}@")
    text = mail.get_body(("plain",)).get_content()
    assert request.data.link in text and "回复“确认”" in text and "“未解决”" in text
    assert request.data.link in mail.get_body(("html",)).get_content()

    # the same request again (a redelivery past the inbox, a replay): nothing new
    await produce(notify.bootstrap, notify.topics, request)
    await asyncio.sleep(1.5)
    assert len(notify.sink.messages) == 1
    assert len(await _deliveries(notify, ticket_id=str(request.data.ticket_id))) == 1
    # the link is a bearer capability: in no log record, nor in the API's answers
    token = f"ctok-{request.data.step_id}"
    assert not [r for r in caplog.records if token in r.getMessage() or token in str(r.__dict__)]
    detail = await notify.get(f"/v1/deliveries/{delivery['id']}", headers=ADMIN)
    assert detail.status_code == 200 and token not in detail.text
    listed = await notify.get("/v1/deliveries", params={"ticket_id": str(request.data.ticket_id)}, headers=ADMIN)
    assert token not in listed.text


async def test_chat_customers_and_the_ones_that_cannot_be_asked(notify) -> None:
    chat = asked(language="en", channel="chat", recipient=events.Requester(name="Lei"),
                 route={"conversation_key": "conv-9"})
    nowhere = asked(channel="dingtalk", recipient=events.Requester(name="韩梅梅"), route={"userid": "member"})
    expired = asked(expires_in=timedelta(seconds=-1))
    opted = asked(recipient=events.Requester(email="Quiet@Example.com"), route={"to": ["Quiet@Example.com"]})
    answer = await notify.put("/v1/notification-preferences/emails/quiet@example.com", json={"opted_out": True},
                              headers=ADMIN)
    assert answer.status_code == 200, answer.text
    await produce(notify.bootstrap, notify.topics, chat, nowhere, expired, opted)

    async def settled():
        found = await _deliveries(notify)
        return found if len(found) == 4 and not [d for d in found if d["status"] in ("queued", "sending")] else None

    found = {d["event_id"]: d for d in await wait_for(settled, timeout=60)}
    assert (found[str(chat.id)]["status"], found[str(chat.id)]["channel"]) == ("sent", "chat")
    [message] = notify.chat.sent
    assert message.route == {"conversation_key": "conv-9"} and chat.data.link in message.body_text
    assert 'Reply "confirm"' in message.body_text and message.automatic
    for undeliverable, why in ((nowhere, "no e-mail address"), (expired, "the confirmation link expired"),
                               (opted, "the customer opted out of notifications")):
        row = found[str(undeliverable.id)]
        assert (row["status"], row["attempts"]) == ("undeliverable", 0) and why in row["reason"]
        assert "ctok-" not in row["reason"]
    assert notify.sink.messages == []
