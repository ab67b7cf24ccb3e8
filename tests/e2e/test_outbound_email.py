"""Outbound e-mail end to end: a customer's e-mail opens a ticket through the gateway, the agent's
public reply reaches the customer's address on the session's real SMTP server (aiosmtpd on
127.0.0.1, conftest.smtp_sink) with our Message-ID, In-Reply-To / References and ``[#number]``,
in Chinese and in English; the customer's answer to it threads back onto the ticket; an internal
note sends nothing; the message shows ``delivery_status: "sent"``, and notify-svc's delivery
record says the same."""

from __future__ import annotations

import email
import email.policy
import uuid

import pytest

from .conftest import eventually

pytestmark = pytest.mark.timeout(180)


def customer_mail(msg_id: str, sender: str, *, subject: str, body: str, in_reply_to: str | None = None,
                  references: str | None = None) -> bytes:
    lines = [f"From: =?UTF-8?B?5p2O6Zu3?= <{sender}>", "To: support@example.com", f"Subject: {subject}",
             f"Message-ID: <{msg_id}>", "Date: Mon, 30 Nov 2026 09:30:00 +0800", "MIME-Version: 1.0",
             "Content-Type: text/plain; charset=UTF-8", "Content-Transfer-Encoding: 8bit"]
    if in_reply_to:
        lines.append(f"In-Reply-To: {in_reply_to}")
    if references:
        lines.append(f"References: {references}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode()


def _mails_to(sink, address: str) -> list[email.message.EmailMessage]:
    """The replies (not the automatic notifications, e.g. an acknowledgement) sent to ``address``."""
    mails = [email.message_from_bytes(raw, policy=email.policy.default)
             for rcpts, raw in list(sink.messages) if address in rcpts]
    return [m for m in mails if m["Auto-Submitted"] is None]


@pytest.mark.parametrize(("subject_header", "subject", "body", "answer"), [
    ("=?UTF-8?B?5Y+R56Wo6L+Y5rKh5pS25Yiw?=", "发票还没收到", "我的发票还没有收到，订单 B-12。", "您好，发票已重新寄出，请查收。"),
    ("Invoice not received", "Invoice not received", "I still have no invoice for order B-12.",
     "Hello, we sent the invoice again."),
])
async def test_a_reply_reaches_the_customer_and_their_answer_threads_back(
        gw, smtp_sink, email_key_headers, admin_headers, subject_header, subject, body, answer):
    sender = f"li.{uuid.uuid4().hex[:8]}@example.com"
    first_id = f"{uuid.uuid4()}@mail.example.com"
    headers = {**email_key_headers, "Content-Type": "message/rfc822"}
    opened = await gw.post("/v1/channels/email/inbound", headers=headers,
                           content=customer_mail(first_id, sender, subject=subject_header, body=body))
    assert opened.status_code == 201, opened.text
    ticket_id = opened.json()["ticket_id"]
    ticket = (await gw.get(f"/v1/tickets/{ticket_id}", headers=admin_headers)).json()
    number = ticket["number"]

    # an internal note first: it must never leave the system
    note = await gw.post(f"/v1/tickets/{ticket_id}/messages", headers=admin_headers,
                         json={"body": "内部备注：客户是 VIP / internal note", "public": False})
    assert note.status_code == 201, note.text
    replied = await gw.post(f"/v1/tickets/{ticket_id}/messages", headers=admin_headers, json={"body": answer})
    assert replied.status_code == 201, replied.text
    reply_id = replied.json()["id"]

    mails = await eventually(lambda: _async(_mails_to(smtp_sink, sender)), timeout=60)
    assert len(mails) == 1, [(m["Subject"], m["Message-ID"], m["Auto-Submitted"], m.get_body(("plain",)).get_content())
                             for m in mails]
    [mail] = mails
    assert mail["Subject"] == f"Re: {subject} [#{number}]"
    assert mail["In-Reply-To"] == f"<{first_id}>"
    assert f"<{first_id}>" in mail["References"].split()
    our_id = mail["Message-ID"]
    assert our_id and our_id.startswith("<") and our_id != f"<{first_id}>"
    assert mail["To"].addresses[0].addr_spec == sender
    assert mail["From"].addresses[0].addr_spec == "support@example.com"  # the address the customer wrote to
    assert mail["Auto-Submitted"] is None
    assert answer in mail.get_body(("plain",)).get_content()
    assert mail.get_body(("html",)) is not None
    assert "内部备注" not in mail.as_string() and "internal note" not in str(mail.get_body(("plain",)).get_content())

    async def sent_status():
        items = (await gw.get(f"/v1/tickets/{ticket_id}/messages", headers=admin_headers)).json()["items"]
        found = {m["id"]: m for m in items}
        return found if found[reply_id].get("delivery_status") == "sent" else None

    messages = await eventually(sent_status, timeout=60)
    note_message = messages[note.json()["id"]]
    assert note_message["public"] is False and note_message.get("delivery_status") is None
    assert messages[reply_id]["delivery_attempts"] == 1

    deliveries = (await gw.get("/v1/deliveries", params={"ticket_id": ticket_id, "kind": "reply"},
                                 headers=admin_headers)).json()
    assert [(d["channel"], d["status"], d["attempts"], d["message_id"]) for d in deliveries["items"]] == [
        ("email", "sent", 1, reply_id)]  # one reply delivery: the note has none
    detail = (await gw.get(f"/v1/deliveries/{deliveries['items'][0]['id']}", headers=admin_headers)).json()
    assert [a["outcome"] for a in detail["attempts_log"]] == ["sent"]

    # the customer answers our mail: it threads onto the same ticket through the normal intake
    answer_back = customer_mail(f"{uuid.uuid4()}@mail.example.com", sender, subject=f"Re: {subject} [#{number}]",
                                body="收到了，谢谢 / got it, thanks", in_reply_to=our_id,
                                references=f"<{first_id}> {our_id}")
    threaded = await gw.post("/v1/channels/email/inbound", headers=headers, content=answer_back)
    assert threaded.status_code == 201, threaded.text
    assert threaded.json()["ticket_id"] == ticket_id and threaded.json()["created"] is False
    assert len(_mails_to(smtp_sink, sender)) == 1  # nothing else was sent to the customer


async def _async(value):
    return value
