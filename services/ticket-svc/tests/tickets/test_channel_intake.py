"""Every channel through POST /v1/channels/{kind}/inbound on the real database: exactly once
under 20 concurrent deliveries, threading, ignored traffic, scopes and bad payloads."""

import asyncio
import json
import uuid
from collections import Counter

import pytest
from sqlalchemy import text

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

AGENT = Principal(kind="user", id="u-agent", role="agent")


def key(kind: str) -> Principal:
    return Principal(kind="channel", id=f"{kind}-key", channel=kind)


def email(msg_id: str, *, subject: str = "=?UTF-8?B?5oiR55qE6K6i5Y2V5rKh5pyJ5Yiw?=", sender: str = "buyer@example.com",
          in_reply_to: str | None = None, body: str = "订单 A-1 还没有到，请帮忙查一下。", extra: str = "") -> bytes:
    headers = [f"From: =?UTF-8?B?5byg5LiJ?= <{sender}>", "To: support@example.com", f"Subject: {subject}",
               "Date: Mon, 23 Nov 2026 09:30:00 +0800", f"Message-ID: <{msg_id}>", "MIME-Version: 1.0",
               "Content-Type: text/plain; charset=UTF-8", "Content-Transfer-Encoding: 8bit"]
    if in_reply_to:
        headers += [f"In-Reply-To: <{in_reply_to}>", f"References: <{in_reply_to}>"]
    return ("\r\n".join(headers) + extra + "\r\n\r\n" + body + "\r\n").encode()


def chat(conversation: str, message: str, body: str = "你好，我想咨询退货") -> bytes:
    return json.dumps({"conversation_id": conversation, "message_id": message, "text": body,
                       "visitor": {"name": "访客 7", "email": "visitor7@example.com"},
                       "sent_at": "2026-11-23T09:30:00+08:00"}, ensure_ascii=False).encode()


def wechat(msg_id: str, openid: str = "oABC123", body: str = "我的快递丢了") -> bytes:
    return (f"<xml><ToUserName><![CDATA[gh_service]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>1763861400</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{body}]]></Content><MsgId>{msg_id}</MsgId></xml>").encode()


def wecom(msg_id: str) -> bytes:
    return (f"<xml><ToUserName><![CDATA[ww_corp]]></ToUserName><FromUserName><![CDATA[zhangsan]]></FromUserName>"
            f"<CreateTime>1763861400</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[VPN 连不上]]></Content><MsgId>{msg_id}</MsgId><AgentID>1000002</AgentID></xml>").encode()


def dingtalk(msg_id: str, conversation: str = "cid-42") -> bytes:
    return json.dumps({"msgtype": "text", "text": {"content": "打印机又坏了"}, "msgId": msg_id,
                       "createAt": 1763861400000, "conversationType": "1", "conversationId": conversation,
                       "senderId": "$:LWCP_v1:$abc", "senderNick": "王五", "senderStaffId": "staff-5",
                       "chatbotUserId": "bot", "isAdmin": False}, ensure_ascii=False).encode()


def phone(call_id: str) -> bytes:
    return json.dumps({"call_id": call_id, "direction": "inbound", "from": "+86 138 0013 8000", "to": "+86 400 800 1234",
                       "started_at": "2026-11-23T09:30:00+08:00", "duration_s": 95, "status": "answered",
                       "caller_name": "赵六", "summary": "客户来电询问发票开具进度"}, ensure_ascii=False).encode()


def webform(submission: str) -> tuple[bytes, str]:
    boundary = "----helpdesk-test"
    parts = [("subject", "网站表单：无法支付"), ("description", "支付页面一直转圈"), ("email", "payer@example.com"),
             ("name", "支付用户"), ("form_submission_id", submission)]
    body = "".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n" for k, v in parts)
    body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"截图.png\"\r\n"
             "Content-Type: image/png\r\n\r\n")
    raw = body.encode() + b"\x89PNG fake" + f"\r\n--{boundary}--\r\n".encode()
    return raw, f"multipart/form-data; boundary={boundary}"


CONTENT_TYPES = {"email": "message/rfc822", "chat": "application/json", "wechat": "application/xml",
                 "wecom": "application/xml", "dingtalk": "application/json", "phone": "application/json"}


def payload(kind: str, unique: str) -> tuple[bytes, str]:
    if kind == "web":
        return webform(unique)
    make = {"email": lambda: email(f"{unique}@mail.example.com"), "chat": lambda: chat("conv-" + unique, unique),
            "wechat": lambda: wechat(unique), "wecom": lambda: wecom(unique), "dingtalk": lambda: dingtalk(unique),
            "phone": lambda: phone(unique)}[kind]
    return make(), CONTENT_TYPES[kind]


async def post(client, kind: str, body: bytes, content_type: str, principal: Principal | None = None):
    return await client.post(f"/v1/channels/{kind}/inbound", content=body,
                             headers={**identity_headers(principal or key(kind)), "Content-Type": content_type})


async def counts(db) -> tuple[int, int]:
    async with db.connect() as conn:
        return (await conn.scalar(text("SELECT count(*) FROM tickets")),
                await conn.scalar(text("SELECT count(*) FROM messages")))


@pytest.mark.parametrize("kind", ["email", "web", "chat", "wechat", "wecom", "dingtalk", "phone"])
async def test_twenty_concurrent_deliveries_make_one_ticket(client, db, kind):
    body, content_type = payload(kind, f"{kind}-{uuid.uuid4().hex[:12]}")
    results = await asyncio.gather(*[post(client, kind, body, content_type) for _ in range(20)])
    statuses = Counter(r.status_code for r in results)
    assert statuses == {201: 1, 200: 19}, [r.text for r in results[:2]]
    answers = {(r.json()["ticket_id"], r.json()["message_id"]) for r in results}
    assert len(answers) == 1
    assert all(r.json()["created"] for r in results)
    assert await counts(db) == (1, 1)
    ticket_id = answers.pop()[0]
    ticket = (await client.get(f"/v1/tickets/{ticket_id}", headers=identity_headers(AGENT))).json()
    assert ticket["channel"] == kind and ticket["subject"]


async def test_email_reply_threads_and_strangers_do_not(client, db):
    first = await post(client, "email", email("m1@mail.example.com"), "message/rfc822")
    assert first.status_code == 201 and first.json()["created"] is True
    reply = await post(client, "email", email("m2@mail.example.com", subject="Re: 我的订单没有到",
                                               in_reply_to="m1@mail.example.com", body="补充：订单号 A-1"),
                       "message/rfc822")
    assert reply.status_code == 201 and reply.json()["created"] is False
    assert reply.json()["ticket_id"] == first.json()["ticket_id"]
    forged = await post(client, "email", email("m3@mail.example.com", sender="mallory@evil.example",
                                               in_reply_to="m1@mail.example.com", body="click here"),
                        "message/rfc822")
    assert forged.status_code == 201 and forged.json()["created"] is True
    assert forged.json()["ticket_id"] != first.json()["ticket_id"]
    number = (await client.get(f"/v1/tickets/{first.json()['ticket_id']}", headers=identity_headers(AGENT))).json()["number"]
    by_subject = await post(client, "email", email("m4@mail.example.com", subject=f"Re: [#{number}] 订单"),
                            "message/rfc822")
    assert by_subject.json()["ticket_id"] == first.json()["ticket_id"] and by_subject.json()["created"] is False


async def test_agent_reply_message_id_threads_the_customer_answer(client):
    first = (await post(client, "email", email("n1@mail.example.com"), "message/rfc822")).json()
    await client.post(f"/v1/tickets/{first['ticket_id']}/messages", json={"body": "请提供订单号"},
                      headers=identity_headers(AGENT))
    ticket = (await client.get(f"/v1/tickets/{first['ticket_id']}", headers=identity_headers(AGENT))).json()
    assert ticket["status"] == "open"


async def test_auto_replies_and_bounces_create_nothing(client, db):
    ooo = email("ooo@mail.example.com", subject="Automatic reply: 我的订单", extra="\r\nAuto-Submitted: auto-replied")
    r = await post(client, "email", ooo, "message/rfc822")
    assert r.status_code == 202 and r.json()["ignored"]
    bounce = email("b1@mail.example.com", sender="MAILER-DAEMON@example.com", subject="Undelivered Mail Returned to Sender",
                   extra="\r\nReturn-Path: <>")
    r = await post(client, "email", bounce, "message/rfc822")
    assert r.status_code == 202
    assert await counts(db) == (0, 0)


async def test_chat_and_wechat_messages_join_their_conversation(client):
    first = (await post(client, "chat", chat("c-1", "m-1"), "application/json")).json()
    second = (await post(client, "chat", chat("c-1", "m-2", "还在吗？"), "application/json")).json()
    assert second["ticket_id"] == first["ticket_id"] and second["created"] is False
    w1 = (await post(client, "wechat", wechat("9001", openid="oXYZ"), "application/xml")).json()
    w2 = (await post(client, "wechat", wechat("9002", openid="oXYZ", body="单号 SF123"), "application/xml")).json()
    assert w1["ticket_id"] == w2["ticket_id"] and w2["created"] is False
    await client.patch(f"/v1/tickets/{w1['ticket_id']}", json={"status": "solved"}, headers=identity_headers(AGENT))
    await client.patch(f"/v1/tickets/{w1['ticket_id']}", json={"status": "closed"}, headers=identity_headers(AGENT))
    w3 = (await post(client, "wechat", wechat("9003", openid="oXYZ", body="又来了"), "application/xml")).json()
    assert w3["created"] is True and w3["ticket_id"] != w1["ticket_id"]


async def test_scopes_and_bad_payloads(client, db):
    body, content_type = payload("chat", "scope-1")
    assert (await post(client, "chat", body, content_type, principal=key("email"))).status_code == 403
    assert (await post(client, "chat", body, content_type, principal=AGENT)).status_code == 403
    for kind, bad in (("email", b""), ("chat", b"{not json"), ("wechat", b"<!DOCTYPE x [<!ENTITY a 'b'>]><xml/>"),
                      ("dingtalk", b"[]"), ("phone", b'{"call_id": 5}'), ("email", b"\x00\x01\x02")):
        r = await post(client, kind, bad, CONTENT_TYPES.get(kind, "application/json"))
        assert r.status_code in (202, 422), (kind, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json") or r.status_code == 202
    # one operation per channel (each with its format in the API document): no route for others
    assert (await client.post("/v1/channels/fax/inbound", content=b"x", headers=identity_headers(key("fax")))).status_code == 404
    assert await counts(db) == (0, 0)


async def test_attachments_arrive_with_the_web_form(client):
    body, content_type = webform("form-attach")
    created = (await post(client, "web", body, content_type)).json()
    messages = (await client.get(f"/v1/tickets/{created['ticket_id']}/messages", headers=identity_headers(AGENT))).json()
    attachment = messages["items"][0]["attachments"][0]
    assert attachment["filename"] == "截图.png" and attachment["size"] == len(b"\x89PNG fake")
    got = await client.get(f"/v1/tickets/{created['ticket_id']}/attachments/{attachment['id']}",
                           headers=identity_headers(AGENT))
    assert got.content == b"\x89PNG fake"


@pytest.mark.parametrize("kind", ["email", "chat", "wechat", "dingtalk"])
async def test_twenty_concurrent_deliveries_of_a_reply_add_one_message(client, db, kind):
    unique = uuid.uuid4().hex[:10]
    first, second = {
        "email": (email(f"{unique}-1@m.example.com"), email(f"{unique}-2@m.example.com", subject="Re: 订单",
                                                            in_reply_to=f"{unique}-1@m.example.com", body="还没到")),
        "chat": (chat(f"c-{unique}", "m-1"), chat(f"c-{unique}", "m-2", "还在吗")),
        "wechat": (wechat(f"{unique}1", openid=f"o{unique}"), wechat(f"{unique}2", openid=f"o{unique}", body="单号?")),
        "dingtalk": (dingtalk(f"{unique}-1", conversation=f"cid-{unique}"),
                     dingtalk(f"{unique}-2", conversation=f"cid-{unique}")),
    }[kind]
    opened = await post(client, kind, first, CONTENT_TYPES[kind])
    assert opened.status_code == 201
    results = await asyncio.gather(*[post(client, kind, second, CONTENT_TYPES[kind]) for _ in range(20)])
    assert Counter(r.status_code for r in results) == {201: 1, 200: 19}
    assert {(r.json()["ticket_id"], r.json()["message_id"], r.json()["created"]) for r in results} == {
        (opened.json()["ticket_id"], results[0].json()["message_id"], False)}
    assert await counts(db) == (1, 2)
