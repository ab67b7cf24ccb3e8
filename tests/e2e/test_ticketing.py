"""The ticketing core end to end through the gateway: e-mail intake exactly once, threading,
an agent working the ticket with If-Match, Chinese search, and the counts moving in analytics."""

import asyncio
import uuid

from .conftest import eventually


def mail(msg_id: str, sender: str, *, subject: str, body: str, in_reply_to: str | None = None) -> bytes:
    lines = [f"From: =?UTF-8?B?5byg5LiJ?= <{sender}>", "To: support@example.com", f"Subject: {subject}",
             f"Message-ID: <{msg_id}>", "Date: Mon, 23 Nov 2026 09:30:00 +0800", "MIME-Version: 1.0",
             "Content-Type: text/plain; charset=UTF-8", "Content-Transfer-Encoding: 8bit"]
    if in_reply_to:
        lines += [f"In-Reply-To: <{in_reply_to}>"]
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode()


async def test_email_ticket_lifecycle_through_the_gateway(gw, email_key_headers, key_headers, admin_headers):
    sender = f"buyer.{uuid.uuid4().hex[:8]}@example.com"
    first_id = f"{uuid.uuid4()}@mail.example.com"
    raw = mail(first_id, sender, subject="=?UTF-8?B?55Sz6K+36YCA5qy+?=", body="我想申请退款，订单 A-77。")
    headers = {**email_key_headers, "Content-Type": "message/rfc822"}
    answers = await asyncio.gather(*[gw.post("/v1/channels/email/inbound", content=raw, headers=headers)
                                     for _ in range(20)])
    assert sorted(r.status_code for r in answers) == [200] * 19 + [201], [r.text for r in answers[:2]]
    ticket_id = {r.json()["ticket_id"] for r in answers}.pop()

    wrong_scope = await gw.post("/v1/channels/email/inbound", content=raw,
                                headers={**key_headers, "Content-Type": "message/rfc822"})
    assert wrong_scope.status_code == 403

    reply = mail(f"{uuid.uuid4()}@mail.example.com", sender, subject="Re: 申请退款", body="补充：已寄回",
                 in_reply_to=first_id)
    threaded = await gw.post("/v1/channels/email/inbound", content=reply, headers=headers)
    assert threaded.status_code == 201 and threaded.json() == {**threaded.json(), "ticket_id": ticket_id,
                                                               "created": False}

    ticket = (await gw.get(f"/v1/tickets/{ticket_id}", headers=admin_headers)).json()
    assert ticket["subject"] == "申请退款" and ticket["channel"] == "email"
    answered = await gw.post(f"/v1/tickets/{ticket_id}/messages", json={"body": "已为您办理退款。"}, headers=admin_headers)
    assert answered.status_code == 201

    async def linked():
        # customer-svc links the requester asynchronously, which moves the version: read the ETag after
        r = await gw.get(f"/v1/tickets/{ticket_id}", headers=admin_headers)
        return r if r.json().get("customer_id") else None

    current = await eventually(linked)
    solved = await gw.patch(f"/v1/tickets/{ticket_id}", json={"status": "solved"},
                            headers={**admin_headers, "If-Match": current.headers["etag"]})
    assert solved.status_code == 200, solved.text
    stale = await gw.patch(f"/v1/tickets/{ticket_id}", json={"priority": "high"},
                           headers={**admin_headers, "If-Match": current.headers["etag"]})
    assert stale.status_code == 412

    found = (await gw.get("/v1/tickets", params={"q": "退款"}, headers=admin_headers)).json()["items"]
    assert ticket_id in {t["id"] for t in found}
    messages = (await gw.get(f"/v1/tickets/{ticket_id}/messages", headers=admin_headers)).json()["items"]
    assert [(m["author_kind"], m["public"]) for m in messages] == [("customer", True), ("customer", True),
                                                                   ("agent", True)]
    audit = (await gw.get(f"/v1/tickets/{ticket_id}/audit", headers=admin_headers)).json()["items"]
    assert [a["action"] for a in audit][:1] == ["created"] and any(a["changes"].get("status") for a in audit)

    assert solved.json()["sla"]["first_response_at"] is not None

    async def sla_applied():
        body = (await gw.get(f"/v1/tickets/{ticket_id}", headers=admin_headers)).json()
        return body if body["sla"]["first_response_due_at"] else None

    assert await eventually(sla_applied)  # sla-svc consumed ticket.created and answered
