"""The customer-confirmation step's customer side on the real database: the request to
notify-svc with its link and route (never logged), the link's page (zh-CN, en) and answers
(confirm closes, reject reopens, a replay has no second effect, another answer afterwards is a
409 or the "already answered" page), and answers by e-mail reply ("确认，谢谢" confirms without
reopening the ticket first, "still broken" reopens it)."""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import text

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, running_app, service_env

from ticket_svc.confirmations import tokens

ADMIN = Principal(kind="user", id="u-admin", role="admin")
EMAIL_KEY = Principal(kind="channel", id="email-key", channel="email")
KEY = "confirmation-test-key-0123456789abcdefghij"
BASE = "https://help.example.com"
PROCESS = {"steps": [
    {"key": "triage", "name": "处理", "kind": "task"},
    {"key": "confirm", "name": "Customer confirms", "kind": "customer_confirmation", "timeout_minutes": 2880},
]}


@pytest.fixture
async def client(infra, ticket_db, monkeypatch):
    service_env(monkeypatch, infra, "TICKET_", ticket_db)
    monkeypatch.setenv("TICKET_CONSUMERS_ENABLED", "false")
    monkeypatch.setenv("TICKET_CONFIRMATION_TOKEN_KEY", KEY)
    monkeypatch.setenv("PUBLIC_BASE_URL", BASE)
    from ticket_svc.config import Settings
    from ticket_svc.main import create_app

    async with running_app(create_app(Settings())) as c:
        yield c


def as_(principal: Principal, **extra: str) -> dict[str, str]:
    return {**identity_headers(principal), **extra}


def visitor(token: str, **extra: str) -> dict[str, str]:
    """What the gateway sends with a link's request: a visitor identity naming the token's digest."""
    return as_(Principal(kind="visitor", id=tokens.digest(token)), **extra)


async def outbox_data(db: Any, ticket_id: Any, event_type: str) -> list[dict[str, Any]]:
    async with db.connect() as conn:
        rows = (await conn.execute(text("SELECT payload FROM outbox WHERE key = :k AND event_type = :t ORDER BY seq"),
                                   {"k": str(ticket_id), "t": event_type})).all()
    return [(r[0] if isinstance(r[0], dict) else json.loads(r[0]))["data"] for r in rows]


async def statuses(db: Any, ticket_id: Any) -> list[tuple[str, str]]:
    """The ticket's status moves, in order (from its ticket.status_changed events)."""
    return [(e["from_status"], e["to_status"]) for e in await outbox_data(db, ticket_id, "ticket.status_changed")]


async def solved_ticket(client: Any, *, language: str | None = "zh-CN") -> dict[str, Any]:
    saved = await client.put("/v1/processes/refund", json=PROCESS, headers=as_(ADMIN))
    assert saved.status_code in (200, 201), saved.text
    created = await client.post("/v1/tickets", headers=as_(ADMIN), json={
        "subject": "退款没有到账 <b>", "description": "please", "type": "refund", "language": language,
        "requester": {"email": "c@example.com", "name": "张三"}})
    assert created.status_code == 201, created.text
    ticket = created.json()
    solved = await client.patch(f"/v1/tickets/{ticket['id']}", headers=as_(ADMIN), json={"status": "solved"})
    assert solved.status_code == 200, solved.text
    return ticket


async def request_of(db: Any, ticket: dict[str, Any]) -> dict[str, Any]:
    found = await outbox_data(db, ticket["id"], "ticket.confirmation_requested")
    assert len(found) == 1, found
    return found[0]


def token_of(request: dict[str, Any]) -> str:
    assert request["link"].startswith(f"{BASE}/v1/confirmations/hcf1.")
    return request["link"].rsplit("/", 1)[1]


async def ticket_status(client: Any, ticket: dict[str, Any]) -> str:
    return (await client.get(f"/v1/tickets/{ticket['id']}", headers=as_(ADMIN))).json()["status"]


async def test_solving_asks_the_customer_with_a_link_and_the_reply_route(client, db, caplog):
    caplog.set_level(logging.DEBUG)
    ticket = await solved_ticket(client)
    request = await request_of(db, ticket)
    token = token_of(request)
    assert request["channel"] == "email" and request["route"]["to"] == "c@example.com"
    assert request["recipient"]["email"] == "c@example.com" and request["number"] == ticket["number"]
    assert request["language"] == "zh-CN" and request["step"] == "confirm" and request["subject"] == "退款没有到账 <b>"
    grant = tokens.verify(KEY.encode(), token, now=time.time())
    assert (str(grant.ticket_id), grant.step_id) == (ticket["id"], uuid.UUID(request["step_id"]))
    # the link expires with the step: 2880 minutes after it started
    expires = datetime.fromisoformat(request["expires_at"])
    assert grant.expires == int(expires.timestamp()) and 2879 * 60 < grant.expires - time.time() <= 2880 * 60
    await client.get(f"/v1/confirmations/{token}", headers=visitor(token, Accept="text/html"))
    await client.post(f"/v1/confirmations/{token}", json={"answer": "confirm"}, headers=visitor(token))
    await client.post(f"/v1/confirmations/{token}", json={"answer": "reject"}, headers=visitor(token))  # a 409
    await client.get(f"/v1/confirmations/{token}x", headers=visitor(token + "x"))  # a 404
    # every record of the service at any level, with its extra fields (the test client's httpx
    # lines are the caller's own, not the service's)
    service_lines = [r.getMessage() + repr(r.__dict__) for r in caplog.records if not r.name.startswith("httpx")]
    assert not any(token in line or request["link"] in line for line in service_lines)


async def test_the_page_in_the_tickets_language_or_the_browsers(client, db):
    ticket = await solved_ticket(client)
    token = token_of(await request_of(db, ticket))
    page = await client.get(f"/v1/confirmations/{token}", headers=visitor(token))  # httpx: Accept */*
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "您的问题解决了吗？" in page.text and f"工单 #{ticket['number']}：退款没有到账 &lt;b&gt;" in page.text
    assert 'name="answer" value="confirm"' in page.text and 'name="answer" value="reject"' in page.text
    assert page.headers["referrer-policy"] == "no-referrer" and "noindex" in page.headers["x-robots-tag"]
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert page.headers["cache-control"] == "no-store"
    as_json = await client.get(f"/v1/confirmations/{token}", headers=visitor(token, Accept="application/json"))
    assert as_json.status_code == 200 and as_json.json()["status"] == "active"
    assert as_json.json()["number"] == ticket["number"] and as_json.json()["language"] == "zh-CN"
    # GET changes nothing
    assert await ticket_status(client, ticket) == "solved"

    english = await solved_ticket(client, language=None)
    token = token_of(await request_of(db, english))
    page = await client.get(f"/v1/confirmations/{token}",
                            headers=visitor(token, Accept="text/html", **{"Accept-Language": "en-GB,en;q=0.8"}))
    assert "Is your request resolved?" in page.text and f"Request #{english['number']}" in page.text


async def test_confirm_by_link_closes_once_and_a_replay_changes_nothing(client, db):
    ticket = await solved_ticket(client)
    token = token_of(await request_of(db, ticket))
    form = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"}
    answered = await client.post(f"/v1/confirmations/{token}", content="answer=confirm&comment=%E5%A5%BD%E7%9A%84",
                                 headers=visitor(token, **form))
    assert answered.status_code == 200, answered.text
    assert "感谢您的确认" in answered.text and answered.headers["referrer-policy"] == "no-referrer"
    assert await ticket_status(client, ticket) == "closed"
    assert await statuses(db, ticket["id"]) == [("new", "solved"), ("solved", "closed")]
    confirmed = await outbox_data(db, ticket["id"], "ticket.customer_confirmed")
    assert [(c["answer"], c["via"], c["comment"]) for c in confirmed] == [("confirmed", "link", "好的")]

    replay = await client.post(f"/v1/confirmations/{token}", content="answer=confirm", headers=visitor(token, **form))
    assert replay.status_code == 200 and "感谢您的确认" in replay.text
    replay_json = await client.post(f"/v1/confirmations/{token}", json={"answer": "confirm"}, headers=visitor(token))
    assert replay_json.status_code == 200 and replay_json.json()["replayed"] is True
    assert replay_json.json()["outcome"] == "confirmed" and replay_json.json()["ticket_status"] == "closed"
    assert len(await outbox_data(db, ticket["id"], "ticket.customer_confirmed")) == 1
    assert len(await outbox_data(db, ticket["id"], "ticket.step_completed")) == 2  # triage, confirm

    other = await client.post(f"/v1/confirmations/{token}", json={"answer": "reject"}, headers=visitor(token))
    assert other.status_code == 409 and other.headers["content-type"] == "application/problem+json"
    assert other.json()["code"] == "step_finished"
    page = await client.post(f"/v1/confirmations/{token}", content="answer=reject", headers=visitor(token, **form))
    assert page.status_code == 409 and "已经确认过了" in page.text
    shown = await client.get(f"/v1/confirmations/{token}", headers=visitor(token, Accept="text/html"))
    assert "已经确认过了" in shown.text
    assert await ticket_status(client, ticket) == "closed"


async def test_reject_by_link_reopens_to_the_previous_step(client, db):
    ticket = await solved_ticket(client)
    token = token_of(await request_of(db, ticket))
    rejected = await client.post(f"/v1/confirmations/{token}", json={"answer": "reject", "comment": "still broken"},
                                 headers=visitor(token))
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["outcome"] == "rejected" and rejected.json()["replayed"] is False
    assert rejected.json()["ticket_status"] == "open"
    process = (await client.get(f"/v1/tickets/{ticket['id']}/process", headers=as_(ADMIN))).json()
    assert process["current_step"] == {"key": "triage", "kind": "task", "status": "active"}
    confirmed = await outbox_data(db, ticket["id"], "ticket.customer_confirmed")
    assert [(c["answer"], c["comment"]) for c in confirmed] == [("rejected", "still broken")]
    # solving again asks again, with a new link for the new run of the step
    await client.patch(f"/v1/tickets/{ticket['id']}", headers=as_(ADMIN), json={"status": "solved"})
    requests = await outbox_data(db, ticket["id"], "ticket.confirmation_requested")
    assert len(requests) == 2 and requests[0]["step_id"] != requests[1]["step_id"]
    # the first link's step is over
    stale = await client.post(f"/v1/confirmations/{token}", json={"answer": "confirm"}, headers=visitor(token))
    assert stale.status_code == 409


async def test_bad_links_and_callers(client, db):
    ticket = await solved_ticket(client)
    token = token_of(await request_of(db, ticket))
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    r = await client.get(f"/v1/confirmations/{forged}", headers=visitor(forged, Accept="application/json"))
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    # a link opened with no preference (a mail app's browser) is a page
    r = await client.get(f"/v1/confirmations/{forged}", headers=visitor(forged, Accept="*/*"))
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html") and "not valid" in r.text
    expired = tokens.mint(KEY.encode(), ticket_id=uuid.UUID(ticket["id"]),
                          step_id=uuid.UUID((await request_of(db, ticket))["step_id"]), expires=int(time.time()) - 5)
    r = await client.post(f"/v1/confirmations/{expired}", json={"answer": "confirm"}, headers=visitor(expired))
    assert r.status_code == 410 and r.json()["type"].endswith("confirmation-expired")
    # no identity, a user's identity, or a visitor identity made for another link: refused
    assert (await client.get(f"/v1/confirmations/{token}")).status_code == 401
    assert (await client.get(f"/v1/confirmations/{token}", headers=as_(ADMIN))).status_code == 401
    assert (await client.get(f"/v1/confirmations/{token}", headers=visitor(forged))).status_code == 401
    # and a visitor identity opens nothing else
    assert (await client.get(f"/v1/tickets/{ticket['id']}", headers=visitor(token))).status_code == 403
    # bad answers
    for body in ({"answer": "maybe"}, {"answer": "confirm", "extra": 1}, {"answer": "confirm", "comment": "x" * 2001}):
        r = await client.post(f"/v1/confirmations/{token}", json=body, headers=visitor(token))
        assert r.status_code == 422, body
    r = await client.post(f"/v1/confirmations/{token}", content=b"{", headers=visitor(token, **{
        "Content-Type": "application/json"}))
    assert r.status_code == 400
    r = await client.post(f"/v1/confirmations/{token}", content="comment=hi", headers=visitor(token, **{
        "Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"}))
    assert r.status_code == 422 and "请选择一个答案" in r.text and ">hi</textarea>" in r.text
    assert await ticket_status(client, ticket) == "solved"


async def test_a_deleted_tickets_link_is_invalid_until_it_is_restored(client, db):
    """The link of a soft-deleted ticket shows nothing of it (no number, no subject) and takes no
    answer; the deletion closed the ticket and so ended the step, which the link says once the
    ticket is restored."""
    ticket = await solved_ticket(client)
    token = token_of(await request_of(db, ticket))
    assert (await client.delete(f"/v1/tickets/{ticket['id']}", headers=as_(ADMIN))).status_code == 204
    r = await client.get(f"/v1/confirmations/{token}", headers=visitor(token, Accept="application/json"))
    assert r.status_code == 404 and "退款" not in r.text
    r = await client.get(f"/v1/confirmations/{token}", headers=visitor(token, Accept="text/html"))
    assert r.status_code == 404 and "退款" not in r.text
    r = await client.post(f"/v1/confirmations/{token}", json={"answer": "confirm"}, headers=visitor(token))
    assert r.status_code == 404
    restored = await client.post(f"/v1/tickets/{ticket['id']}/restore", headers=as_(ADMIN))
    assert restored.status_code == 200, restored.text
    r = await client.get(f"/v1/confirmations/{token}", headers=visitor(token, Accept="application/json"))
    assert r.status_code == 409 and r.json()["code"] == "step_finished"


# --- answers by reply ---------------------------------------------------------------------------


def email(msg_id: str, *, subject: str, body: str, in_reply_to: str | None = None) -> bytes:
    headers = ["From: =?UTF-8?B?5byg5LiJ?= <c@example.com>", "To: support@example.com", f"Subject: {subject}",
               "Date: Mon, 30 Nov 2026 09:30:00 +0800", f"Message-ID: <{msg_id}>", "MIME-Version: 1.0",
               "Content-Type: text/plain; charset=UTF-8", "Content-Transfer-Encoding: 8bit"]
    if in_reply_to:
        headers += [f"In-Reply-To: <{in_reply_to}>", f"References: <{in_reply_to}>"]
    return ("\r\n".join(headers) + "\r\n\r\n" + body + "\r\n").encode()


async def email_ticket(client: Any) -> tuple[str, dict[str, Any]]:
    saved = await client.put("/v1/processes/refund", json=PROCESS, headers=as_(ADMIN))
    assert saved.status_code in (200, 201)
    first_id = f"{uuid.uuid4().hex}@mail.example.com"
    opened = await client.post("/v1/channels/email/inbound", content=email(first_id, subject="退款", body="钱没到"),
                               headers={**as_(EMAIL_KEY), "Content-Type": "message/rfc822"})
    assert opened.status_code == 201, opened.text
    ticket = (await client.get(f"/v1/tickets/{opened.json()['ticket_id']}", headers=as_(ADMIN))).json()
    typed = await client.patch(f"/v1/tickets/{ticket['id']}", headers=as_(ADMIN), json={"type": "refund"})
    assert typed.status_code == 200, typed.text
    solved = await client.patch(f"/v1/tickets/{ticket['id']}", headers=as_(ADMIN), json={"status": "solved"})
    assert solved.status_code == 200, solved.text
    return first_id, ticket


async def reply(client: Any, ticket: dict[str, Any], first_id: str, body: str) -> None:
    answer = await client.post("/v1/channels/email/inbound", content=email(
        f"{uuid.uuid4().hex}@mail.example.com", subject=f"Re: [#{ticket['number']}] 退款", in_reply_to=first_id,
        body=body), headers={**as_(EMAIL_KEY), "Content-Type": "message/rfc822"})
    assert answer.status_code == 201 and answer.json()["ticket_id"] == ticket["id"], answer.text


async def test_an_email_request_threads_and_a_confirming_reply_closes_without_reopening(client, db):
    first_id, ticket = await email_ticket(client)
    request = await request_of(db, ticket)
    # notify-svc answers on the customer's thread, so the reply comes back to this ticket
    assert request["route"]["in_reply_to"] == first_id and first_id in request["route"]["references"]
    await reply(client, ticket, first_id, "确认，谢谢\r\n\r\n> 您的问题解决了吗？\r\n> 工单 #1")
    assert await ticket_status(client, ticket) == "closed"
    moves = await statuses(db, ticket["id"])
    assert moves[-1] == ("solved", "closed") and ("solved", "open") not in moves
    confirmed = await outbox_data(db, ticket["id"], "ticket.customer_confirmed")
    assert [(c["answer"], c["via"]) for c in confirmed] == [("confirmed", "email")]


async def test_any_other_reply_reopens_to_the_previous_step(client, db):
    first_id, ticket = await email_ticket(client)
    await reply(client, ticket, first_id, "still broken, the refund is not there")
    assert await ticket_status(client, ticket) == "open"
    confirmed = await outbox_data(db, ticket["id"], "ticket.customer_confirmed")
    assert [(c["answer"], c["via"]) for c in confirmed] == [("replied", "email")]
    process = (await client.get(f"/v1/tickets/{ticket['id']}/process", headers=as_(ADMIN))).json()
    assert process["current_step"] == {"key": "triage", "kind": "task", "status": "active"}
    # and the link of the ended step now says so
    token = token_of((await outbox_data(db, ticket["id"], "ticket.confirmation_requested"))[0])
    r = await client.post(f"/v1/confirmations/{token}", json={"answer": "confirm"}, headers=visitor(token))
    assert r.status_code == 409


async def test_a_chat_ticket_is_asked_in_its_conversation_and_a_chat_answer_confirms(client, db):
    saved = await client.put("/v1/processes/refund", json=PROCESS, headers=as_(ADMIN))
    assert saved.status_code in (200, 201)
    chat_key = as_(Principal(kind="channel", id="chat-key", channel="chat"), **{"Content-Type": "application/json"})
    conversation = f"conv-{uuid.uuid4().hex[:8]}"

    def chat(message_id: str, body: str) -> bytes:
        return json.dumps({"conversation_id": conversation, "message_id": message_id, "text": body,
                           "visitor": {"name": "访客", "email": "v@example.com"},
                           "sent_at": "2026-11-30T09:30:00+08:00"}, ensure_ascii=False).encode()

    opened = await client.post("/v1/channels/chat/inbound", content=chat("m-1", "退款还没到"), headers=chat_key)
    assert opened.status_code == 201, opened.text
    ticket_id = opened.json()["ticket_id"]
    assert (await client.patch(f"/v1/tickets/{ticket_id}", headers=as_(ADMIN), json={"type": "refund"})).status_code == 200
    assert (await client.patch(f"/v1/tickets/{ticket_id}", headers=as_(ADMIN), json={"status": "solved"})).status_code == 200
    request = await request_of(db, {"id": ticket_id})
    assert request["channel"] == "chat" and request["route"] == {"conversation_key": f"chat:{conversation}"}
    answer = await client.post("/v1/channels/chat/inbound", content=chat("m-2", "好了，谢谢！"), headers=chat_key)
    assert answer.status_code == 201 and answer.json()["ticket_id"] == ticket_id, answer.text
    assert await ticket_status(client, {"id": ticket_id}) == "closed"
    assert ("solved", "open") not in await statuses(db, ticket_id)
    confirmed = await outbox_data(db, ticket_id, "ticket.customer_confirmed")
    assert [(c["answer"], c["via"]) for c in confirmed] == [("confirmed", "chat")]


async def test_after_a_timeout_the_link_says_it_expired(client, db):
    ticket = await solved_ticket(client)
    request = await request_of(db, ticket)
    token = token_of(request)
    # the step as the deadline timer leaves it (runtime.on_deadline; its own tests drive the clock)
    async with db.begin() as conn:
        await conn.execute(text("UPDATE ticket_steps SET status = 'expired', outcome = 'timed_out', "
                                "finished_at = now() WHERE id = :id"), {"id": uuid.UUID(request["step_id"])})
    page = await client.post(f"/v1/confirmations/{token}", content="answer=confirm",
                             headers=visitor(token, **{"Content-Type": "application/x-www-form-urlencoded"}))
    assert page.status_code == 409 and "此链接已过期" in page.text
    problem = await client.post(f"/v1/confirmations/{token}", json={"answer": "confirm"}, headers=visitor(token))
    assert problem.status_code == 409 and problem.json()["code"] == "step_finished"


async def test_without_a_key_nobody_is_asked_and_the_audit_says_why(infra, ticket_db, monkeypatch, db):
    service_env(monkeypatch, infra, "TICKET_", ticket_db)
    monkeypatch.setenv("TICKET_CONSUMERS_ENABLED", "false")
    monkeypatch.delenv("TICKET_CONFIRMATION_TOKEN_KEY", raising=False)
    from ticket_svc.config import Settings
    from ticket_svc.main import create_app

    async with running_app(create_app(Settings())) as bare:
        ticket = await solved_ticket(bare)
        assert await outbox_data(db, ticket["id"], "ticket.confirmation_requested") == []
        async with db.connect() as conn:
            found = (await conn.execute(text(
                "SELECT changes FROM ticket_audit WHERE ticket_id = :t AND action = 'confirmation_not_requested'"),
                {"t": uuid.UUID(ticket["id"])})).scalar_one()
        assert "TICKET_CONFIRMATION_TOKEN_KEY" in json.dumps(found)
        # and no link can be genuine: every token is a 404
        token = tokens.mint(KEY.encode(), ticket_id=uuid.UUID(ticket["id"]), step_id=uuid.uuid4(),
                            expires=int(time.time()) + 60)
        r = await bare.get(f"/v1/confirmations/{token}", headers=visitor(token, Accept="application/json"))
        assert r.status_code == 404
