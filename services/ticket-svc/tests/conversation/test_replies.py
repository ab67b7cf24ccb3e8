"""Public agent replies become ``ticket.reply_requested`` (real database): the event per channel,
the DingTalk session webhook kept out of every API answer, undeliverable replies, internal notes,
attachment links, the event size bound, and notify-svc's delivery reports through the broker."""

import base64
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from sqlalchemy import text

from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, produce, running_app, service_env, wait_for
from ticket_svc.conversation import outbound
from ticket_svc.pii.codec import codec

#: the key the conftest's apps use (tests/conftest.py)
ATTACHMENT_URL_KEY = "test-attachment-url-key-0123456789abcdef"

AGENT = Principal(kind="user", id="u-agent", role="agent", name="李雷 Lei")
SECRET_HOOK = "https://oapi.dingtalk.com/robot/sendBySession?session=5ec2e7-bearer-token"


def key(kind: str) -> Principal:
    return Principal(kind="channel", id=f"{kind}-key", channel=kind)


@pytest.fixture
async def reply_client(infra, ticket_db, monkeypatch):
    """The API (no consumers) with a WeChat account mapping."""
    service_env(monkeypatch, infra, "TICKET_", ticket_db)
    monkeypatch.setenv("TICKET_CONSUMERS_ENABLED", "false")
    monkeypatch.setenv("TICKET_ATTACHMENT_URL_KEY", ATTACHMENT_URL_KEY)
    monkeypatch.setenv("TICKET_WECHAT_APP_IDS", json.dumps({"gh_service": "wx0123456789"}))
    from ticket_svc.config import Settings
    from ticket_svc.main import create_app

    async with running_app(create_app(Settings())) as c:
        yield c


def email(msg_id: str, *, in_reply_to: str | None = None, body: str = "订单 A-1 还没有到") -> bytes:
    headers = ["From: =?UTF-8?B?5byg5LiJ?= <buyer@example.com>", "To: Help <help@shop.example>, other@example.com",
               "Subject: =?UTF-8?B?5oiR55qE6K6i5Y2V?=", "Date: Mon, 23 Nov 2026 09:30:00 +0800",
               f"Message-ID: <{msg_id}>", "MIME-Version: 1.0", "Content-Type: text/plain; charset=UTF-8",
               "Content-Transfer-Encoding: 8bit"]
    if in_reply_to:
        headers += [f"In-Reply-To: <{in_reply_to}>", f"References: <{in_reply_to}>"]
    return ("\r\n".join(headers) + "\r\n\r\n" + body + "\r\n").encode()


def wechat(msg_id: str, openid: str) -> bytes:
    return (f"<xml><ToUserName><![CDATA[gh_service]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>1763861400</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[我的快递丢了]]></Content><MsgId>{msg_id}</MsgId></xml>").encode()


def dingtalk(msg_id: str, conversation: str, webhook: str = SECRET_HOOK, expires: int = 1_900_000_000_000) -> bytes:
    return json.dumps({"msgtype": "text", "text": {"content": "打印机又坏了"}, "msgId": msg_id,
                       "createAt": 1763861400000, "conversationType": "1", "conversationId": conversation,
                       "senderId": "$:LWCP_v1:$abc", "senderNick": "王五", "senderStaffId": "staff-5",
                       "chatbotUserId": "bot", "robotCode": "dingrobot1", "sessionWebhook": webhook,
                       "sessionWebhookExpiredTime": expires}, ensure_ascii=False).encode()


async def inbound(client, kind: str, body: bytes, content_type: str) -> dict:
    answer = await client.post(f"/v1/channels/{kind}/inbound", content=body,
                               headers={**identity_headers(key(kind)), "Content-Type": content_type})
    assert answer.status_code in (200, 201), answer.text
    return answer.json()


async def reply(client, ticket_id: str, body: dict, principal: Principal = AGENT) -> dict:
    answer = await client.post(f"/v1/tickets/{ticket_id}/messages", json=body, headers=identity_headers(principal))
    assert answer.status_code == 201, answer.text
    return answer.json()


async def reply_events(db, ticket_id: str) -> list[dict]:
    async with db.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT payload FROM outbox WHERE key = :k AND event_type = 'ticket.reply_requested' ORDER BY seq"),
            {"k": ticket_id})).scalars().all()
    return [orjson.loads(r)["data"] for r in rows]


async def test_email_reply_carries_route_and_threading(reply_client, db):
    client = reply_client
    first = await inbound(client, "email", email("c1@mail.example"), "message/rfc822")
    ticket_id = first["ticket_id"]
    patched = await client.patch(f"/v1/tickets/{ticket_id}", json={"cc": ["boss@example.com"]},
                                 headers=identity_headers(AGENT))
    assert patched.status_code == 200, patched.text
    one = await reply(client, ticket_id, {"body": "请提供订单号", "html": "<p>请提供<b>订单号</b></p>"})
    second = await inbound(client, "email", email("c2@mail.example", in_reply_to="c1@mail.example", body="A-1"),
                           "message/rfc822")
    assert second["ticket_id"] == ticket_id
    two = await reply(client, ticket_id, {"body": "已补发 / reshipped"})

    sent = await reply_events(db, ticket_id)
    assert len(sent) == 2
    first_event, event = sent
    assert first_event["in_reply_to"] == "c1@mail.example" and first_event["references"] == ["c1@mail.example"]
    assert first_event["body_html"] == "<p>请提供<b>订单号</b></p>"
    async with db.connect() as conn:
        our_id = await conn.scalar(text("SELECT email_message_id FROM messages WHERE id = :id"), {"id": two["id"]})
        first_id = await conn.scalar(text("SELECT email_message_id FROM messages WHERE id = :id"), {"id": one["id"]})
    assert event["channel"] == "email" and event["message_id"] == two["id"]
    assert event["route"] == {"to": "buyer@example.com", "cc": ["boss@example.com"], "from": "help@shop.example"}
    assert event["email_message_id"] == our_id and our_id.startswith("ticket-")
    assert event["in_reply_to"] == "c2@mail.example"
    assert event["references"] == ["c1@mail.example", first_id, "c2@mail.example"]
    assert event["recipient"]["email"] == "buyer@example.com" and event["number"] is not None
    assert event["subject"] == "我的订单" and event["author_id"] == "u-agent" and event["author_name"] == "李雷 Lei"
    assert event["body_text"] == "已补发 / reshipped" and event["attachments"] == []

    shown = {m["id"]: m for m in (await client.get(f"/v1/tickets/{ticket_id}/messages",
                                                   headers=identity_headers(AGENT))).json()["items"]}
    assert shown[two["id"]]["delivery_status"] == "queued" and shown[two["id"]]["delivery_attempts"] == 0
    assert shown[two["id"]]["delivery_updated_at"] is not None
    customer = [m for m in shown.values() if m["author_kind"] == "customer"]
    assert customer and all(m["delivery_status"] is None and m["delivery_updated_at"] is None for m in customer)
    assert two["delivery_status"] == "queued"  # the POST's own answer too

    # the customer's answer to our mail (In-Reply-To: our Message-ID) threads back onto the ticket
    answer = await inbound(client, "email", email("c3@mail.example", in_reply_to=our_id, body="收到，谢谢"),
                           "message/rfc822")
    assert answer["ticket_id"] == ticket_id and not answer.get("created", False)


async def test_wechat_and_wecom_routes(reply_client, db):
    client = reply_client
    openid = f"o{uuid.uuid4().hex[:10]}"
    created = await inbound(client, "wechat", wechat(uuid.uuid4().hex[:12], openid), "application/xml")
    await reply(client, created["ticket_id"], {"body": "您好，已为您查询"})
    (event,) = await reply_events(db, created["ticket_id"])
    assert event["channel"] == "wechat"
    assert event["route"] == {"openid": openid, "app_id": "wx0123456789", "original_id": "gh_service"}
    assert event["email_message_id"] is None and event["in_reply_to"] is None

    wecom = (f"<xml><ToUserName><![CDATA[ww_corp]]></ToUserName><FromUserName><![CDATA[zhangsan]]></FromUserName>"
             f"<CreateTime>1763861400</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[VPN]]>"
             f"</Content><MsgId>{uuid.uuid4().hex[:12]}</MsgId><AgentID>1000002</AgentID>"
             f"<OpenKfId><![CDATA[wkAbc]]></OpenKfId></xml>").encode()
    created = await inbound(client, "wecom", wecom, "application/xml")
    await reply(client, created["ticket_id"], {"body": "请重启 VPN 客户端"})
    (event,) = await reply_events(db, created["ticket_id"])
    assert event["channel"] == "wecom"
    assert event["route"] == {"external_userid": "zhangsan", "open_kfid": "wkAbc", "corp_id": "ww_corp",
                              "agent_id": "1000002"}


async def test_dingtalk_session_webhook_is_in_the_event_and_reply_routes_only(reply_client, db):
    client = reply_client
    conversation = f"cid-{uuid.uuid4().hex[:8]}"
    created = await inbound(client, "dingtalk", dingtalk(uuid.uuid4().hex, conversation), "application/json")
    ticket_id = created["ticket_id"]
    posted = await reply(client, ticket_id, {"body": "已派人处理"})
    (event,) = await reply_events(db, ticket_id)
    assert event["channel"] == "dingtalk"
    assert event["route"] == {"session_webhook": SECRET_HOOK, "session_webhook_expires_at": 1_900_000_000_000,
                              "sender_staff_id": "staff-5", "robot_code": "dingrobot1",
                              "conversation_id": conversation}

    # a forged callback's webhook on another host is never stored: the last valid one stays
    forged = "https://evil.example/robot/sendBySession?session=x"
    await inbound(client, "dingtalk", dingtalk(uuid.uuid4().hex, conversation, webhook=forged), "application/json")
    await reply(client, ticket_id, {"body": "第二次回复"})
    assert (await reply_events(db, ticket_id))[-1]["route"]["session_webhook"] == SECRET_HOOK

    async with db.connect() as conn:
        stored = await conn.scalar(text("SELECT route FROM reply_routes WHERE ticket_id = :t"), {"t": ticket_id})
        leaks = await conn.scalar(text(
            "SELECT count(*) FROM messages WHERE ticket_id = :t AND (metadata::text LIKE '%bearer-token%' "
            "OR metadata::text LIKE '%evil.example/robot%' OR body_text LIKE '%bearer-token%')"), {"t": ticket_id})
        other_events = await conn.scalar(text(
            "SELECT count(*) FROM outbox WHERE payload::text LIKE '%bearer-token%' "
            "AND event_type <> 'ticket.reply_requested'"))
    # stored sealed (docs/security.md): the webhook only comes back through the service's key
    assert list(stored) == ["sealed"] and "bearer-token" not in stored["sealed"]
    stored = codec().route(stored)
    assert stored["session_webhook"] == SECRET_HOOK and "evil" not in json.dumps(stored)
    assert (leaks, other_events) == (0, 0)

    answers = []
    for principal in (AGENT, key("dingtalk")):
        headers = identity_headers(principal)
        for path in (f"/v1/tickets/{ticket_id}", f"/v1/tickets/{ticket_id}/messages", f"/v1/tickets?limit=100",
                     f"/v1/tickets/{ticket_id}/audit", f"/v1/tickets/{ticket_id}/links"):
            answer = await client.get(path, headers=headers)
            if answer.status_code == 200:
                answers.append(answer.text)
    answers.append(json.dumps(posted))
    assert len(answers) >= 7
    assert not any("bearer-token" in a or "sendBySession" in a for a in answers)


async def test_a_follow_up_of_a_closed_dingtalk_ticket_answers_on_the_same_route(reply_client, db):
    client = reply_client
    created = await inbound(client, "dingtalk", dingtalk(uuid.uuid4().hex, f"cid-{uuid.uuid4().hex[:8]}"),
                            "application/json")
    url = f"/v1/tickets/{created['ticket_id']}"
    for status in ("solved", "closed"):
        assert (await client.patch(url, json={"status": status}, headers=identity_headers(AGENT))).status_code == 200
    later = await reply(client, created["ticket_id"], {"body": "又坏了"}, principal=key("dingtalk"))
    follow_up = later["follow_up_ticket_id"]
    assert follow_up and follow_up != created["ticket_id"]
    await reply(client, follow_up, {"body": "马上处理"})
    (event,) = await reply_events(db, follow_up)
    assert event["channel"] == "dingtalk" and event["route"]["session_webhook"] == SECRET_HOOK


async def test_no_way_to_reach_the_customer_is_undeliverable_without_an_event(reply_client, db):
    client = reply_client
    call = json.dumps({"call_id": uuid.uuid4().hex, "direction": "inbound", "from": "+86 138 0013 8000",
                       "to": "+86 400 800 1234", "started_at": "2026-11-23T09:30:00+08:00", "duration_s": 95,
                       "status": "answered", "summary": "询问发票"}).encode()
    created = await inbound(client, "phone", call, "application/json")
    posted = await reply(client, created["ticket_id"], {"body": "发票已寄出"})
    assert posted["delivery_status"] == "undeliverable"
    assert posted["delivery_reason"] == "no e-mail address for a phone ticket"
    assert await reply_events(db, created["ticket_id"]) == []
    as_channel = (await client.get(f"/v1/tickets/{created['ticket_id']}/messages",
                                   headers=identity_headers(key("phone")))).json()["items"]
    mine = next(m for m in as_channel if m["id"] == posted["id"])
    assert mine["delivery_status"] == "undeliverable" and mine["delivery_reason"] is None  # reasons are ours

    # a phone requester with an address is answered by e-mail
    api = await client.post("/v1/tickets", json={"subject": "来电", "requester": {"phone": "+8613800138001",
                                                                                "email": "caller@example.com"}},
                            headers=identity_headers(key("phone")))
    assert api.status_code == 201, api.text
    await reply(client, api.json()["id"], {"body": "见邮件"})
    (event,) = await reply_events(db, api.json()["id"])
    assert event["channel"] == "email" and event["route"] == {"to": "caller@example.com", "cc": []}


async def test_internal_notes_and_customer_messages_send_nothing(reply_client, db):
    client = reply_client
    created = await client.post("/v1/tickets", json={"subject": "s", "requester": {"email": "c@example.com"}},
                                headers=identity_headers(key("web")))
    ticket_id = created.json()["id"]
    note = await reply(client, ticket_id, {"body": "内部备注", "public": False})
    customer = await reply(client, ticket_id, {"body": "补充一句"}, principal=key("web"))
    assert await reply_events(db, ticket_id) == []
    for message in (note, customer):
        assert (message["delivery_status"], message["delivery_reason"], message["delivery_attempts"],
                message["delivery_updated_at"]) == (None, None, None, None)


async def test_macro_reply_is_delivered_too(reply_client, db):
    client = reply_client
    created = await client.post("/v1/tickets", json={"subject": "s", "requester": {"email": "m@example.com"}},
                                headers=identity_headers(key("web")))
    ticket_id = created.json()["id"]
    macro = await client.post("/v1/macros", json={"name": "thanks", "reply": {"body": "谢谢您的耐心"}},
                              headers=identity_headers(AGENT))
    assert macro.status_code == 201, macro.text
    applied = await client.post(f"/v1/tickets/{ticket_id}/macros/{macro.json()['id']}",
                                headers=identity_headers(AGENT))
    assert applied.status_code == 200, applied.text
    (event,) = await reply_events(db, ticket_id)
    assert event["channel"] == "email" and event["body_text"] == "谢谢您的耐心"


async def test_attachment_links_are_capabilities(reply_client, db):
    client = reply_client
    created = await client.post("/v1/tickets", json={"subject": "s", "requester": {"email": "f@example.com"}},
                                headers=identity_headers(key("web")))
    ticket_id = created.json()["id"]
    content = "发票 PDF".encode() + uuid.uuid4().bytes
    await reply(client, ticket_id, {"body": "附件是发票", "attachments": [
        {"filename": "发票.pdf", "content_type": "application/pdf", "content_base64": base64.b64encode(content).decode()}]})
    (event,) = await reply_events(db, ticket_id)
    (attachment,) = event["attachments"]
    digest = hashlib.sha256(content).hexdigest()
    assert (attachment["sha256"], attachment["filename"], attachment["content_type"], attachment["size"]) == (
        digest, "发票.pdf", "application/pdf", len(content))
    url = attachment["url"]
    assert url.startswith(f"/internal/attachments/{digest}?")

    fetched = await client.get(url)  # no identity: the capability is the credential
    assert fetched.status_code == 200 and fetched.content == content
    assert fetched.headers["content-type"] == "application/pdf"
    assert fetched.headers["x-content-type-options"] == "nosniff"

    sig = url.rsplit("sig=", 1)[1]
    tampered_sig = url[: -len(sig)] + ("0" if sig[0] != "0" else "1") + sig[1:]
    tampered_type = url.replace("type=application%2Fpdf", "type=text%2Fhtml")
    other_file = url.replace(digest, hashlib.sha256(b"other").hexdigest())
    key_bytes = ATTACHMENT_URL_KEY.encode()
    expired = outbound.attachment_url(key_bytes, sha256=digest, content_type="application/pdf",
                                      expires=int(datetime.now(UTC).timestamp()) - 1)
    for bad in (tampered_sig, tampered_type, other_file, expired, url.split("?")[0]):
        answer = await client.get(bad)
        assert answer.status_code == 403, (bad, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
    unknown = hashlib.sha256(b"never stored").hexdigest()
    signed_unknown = outbound.attachment_url(key_bytes, sha256=unknown, content_type="text/plain",
                                             expires=int(datetime.now(UTC).timestamp()) + 60)
    assert (await client.get(signed_unknown)).status_code == 404
    assert (await client.get("/internal/attachments/not-a-hash?exp=1&sig=x")).status_code in (403, 404, 422)

    document = (await client.get("/openapi.json")).text
    assert "/internal/attachments" not in document


async def test_a_reply_too_large_for_one_event_is_still_delivered(reply_client, db):
    client = reply_client
    created = await client.post("/v1/tickets", json={"subject": "s", "requester": {"email": "big@example.com"}},
                                headers=identity_headers(key("web")))
    ticket_id = created.json()["id"]
    body = "😀" * 65_536  # the API's limit in characters: 256 KiB of UTF-8 alone
    html = "<p>" + "长" * 250_000 + "</p>"
    posted = await reply(client, ticket_id, {"body": body, "html": html})
    assert posted["delivery_status"] == "queued"
    async with db.connect() as conn:
        payload = await conn.scalar(text("SELECT payload FROM outbox WHERE key = :k AND "
                                         "event_type = 'ticket.reply_requested'"), {"k": ticket_id})
    assert len(payload) <= 262_144
    event = orjson.loads(payload)["data"]
    assert event["body_html"] is None
    assert event["body_text"].endswith(outbound.TRUNCATION_NOTE) and len(event["body_text"]) > 40_000
    assert body.startswith(event["body_text"][: -len(outbound.TRUNCATION_NOTE)])

    # a long reply that fits loses only its HTML part
    medium = "好" * 60_000
    await reply(client, ticket_id, {"body": medium, "html": "<p>" + "好" * 60_000 + "</p>"})
    async with db.connect() as conn:
        rows = (await conn.execute(text("SELECT payload FROM outbox WHERE key = :k AND "
                                        "event_type = 'ticket.reply_requested' ORDER BY seq"), {"k": ticket_id})).all()
    second = orjson.loads(rows[-1][0])["data"]
    assert second["body_text"] == medium and second["body_html"] is None


# --- notify-svc's reports, through the broker ------------------------------------------------

def report(kind_type, message_id, ticket_id, *, status, attempts, at, reason=None, event_id=None, kind="reply"):
    cls = {"delivery.succeeded": events.DeliverySucceeded, "delivery.deferred": events.DeliveryDeferred,
           "delivery.failed": events.DeliveryFailed}[kind_type]
    evt = cls(source="notify-svc", subject=str(message_id), data=events.DeliveryStatusData(
        delivery_id=uuid.uuid5(uuid.NAMESPACE_URL, str(message_id)), kind=kind, channel="email", status=status,
        attempts=attempts, ticket_id=uuid.UUID(ticket_id), message_id=uuid.UUID(message_id), reason=reason, at=at))
    if event_id is not None:
        evt = evt.model_copy(update={"id": event_id})
    return evt


async def test_delivery_reports_update_the_message_and_stale_ones_do_not(full_client, infra, db):
    client = full_client
    created = await client.post("/v1/tickets", json={"subject": "s", "requester": {"email": "d@example.com"}},
                                headers=identity_headers(key("web")))
    ticket_id = created.json()["id"]
    message_id = (await reply(client, ticket_id, {"body": "第一次回复"}))["id"]
    t0 = datetime.now(UTC) - timedelta(minutes=5)  # notify-svc's clock may lag ours: its first report still counts

    async def shown(principal=AGENT):
        items = (await client.get(f"/v1/tickets/{ticket_id}/messages", headers=identity_headers(principal))).json()
        return next(m for m in items["items"] if m["id"] == message_id)

    async def state():
        m = await shown()
        return m["delivery_status"], m["delivery_attempts"], m["delivery_reason"]

    async def becomes(expected):
        return await wait_for(lambda: _equal(state, expected), timeout=30)

    deferred = report("delivery.deferred", message_id, ticket_id, status="queued", attempts=1, at=t0,
                      reason="SMTP 451 greylisted")
    await produce(infra.kafka_bootstrap, client.topics, deferred)
    await becomes(("queued", 1, "SMTP 451 greylisted"))

    succeeded = report("delivery.succeeded", message_id, ticket_id, status="sent", attempts=2,
                       at=t0 + timedelta(seconds=30))
    # an older deferral arriving after the success, a report about a notification, and a report
    # on a message that is no reply: none of them changes anything
    late = report("delivery.deferred", message_id, ticket_id, status="queued", attempts=1,
                  at=t0 + timedelta(seconds=10), reason="late")
    same_instant = report("delivery.deferred", message_id, ticket_id, status="queued", attempts=3,
                          at=t0 + timedelta(seconds=30), reason="same instant")
    notification = report("delivery.failed", message_id, ticket_id, status="failed", attempts=1,
                          at=t0 + timedelta(minutes=1), reason="not a reply", kind="notification")
    await produce(infra.kafka_bootstrap, client.topics, succeeded, late, same_instant, notification)
    await becomes(("sent", 2, None))
    marker = report("delivery.succeeded", str(uuid.uuid4()), ticket_id, status="sent", attempts=1,
                    at=t0 + timedelta(minutes=2))  # an unknown message: ignored, and tells us the rest was read
    await produce(infra.kafka_bootstrap, client.topics, marker)
    await wait_for(lambda: _inbox_has(db, marker.id), timeout=30)
    assert await state() == ("sent", 2, None)
    assert (await shown())["delivery_updated_at"].startswith((t0 + timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M"))

    # a final state is replaced by a newer report (a delivery retried by hand)
    failed = report("delivery.failed", message_id, ticket_id, status="undeliverable", attempts=3,
                    at=t0 + timedelta(minutes=3), reason="45015: outside the 48-hour window")
    await produce(infra.kafka_bootstrap, client.topics, failed)
    await becomes(("undeliverable", 3, "45015: outside the 48-hour window"))
    customer_view = await shown(key("web"))
    assert customer_view["delivery_status"] == "undeliverable" and customer_view["delivery_reason"] is None

    # the same event again (a redelivery) has no second effect: the inbox has its id
    async with db.begin() as conn:
        await conn.execute(text("UPDATE messages SET delivery_status = 'queued', delivery_attempts = 0, "
                                "delivery_reason = NULL WHERE id = :id"), {"id": message_id})
    await produce(infra.kafka_bootstrap, client.topics, failed)
    second_marker = report("delivery.succeeded", str(uuid.uuid4()), ticket_id, status="sent", attempts=1,
                           at=t0 + timedelta(minutes=4))
    await produce(infra.kafka_bootstrap, client.topics, second_marker)
    await wait_for(lambda: _inbox_has(db, second_marker.id), timeout=30)
    assert await state() == ("queued", 0, None)
    async with db.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM inbox WHERE event_id = :id"), {"id": failed.id}) == 1


async def _equal(get, expected):
    return (await get()) == expected


async def _inbox_has(db, event_id) -> bool:
    async with db.connect() as conn:
        return bool(await conn.scalar(text("SELECT count(*) FROM inbox WHERE event_id = :id"), {"id": event_id}))


async def test_without_a_key_attachments_are_named_without_a_link(infra, ticket_db, monkeypatch, db):
    service_env(monkeypatch, infra, "TICKET_", ticket_db)
    monkeypatch.setenv("TICKET_CONSUMERS_ENABLED", "false")
    monkeypatch.delenv("TICKET_ATTACHMENT_URL_KEY", raising=False)
    from ticket_svc.config import Settings
    from ticket_svc.main import create_app

    async with running_app(create_app(Settings())) as client:
        created = await client.post("/v1/tickets", json={"subject": "s", "requester": {"email": "n@example.com"}},
                                    headers=identity_headers(key("web")))
        ticket_id = created.json()["id"]
        await reply(client, ticket_id, {"body": "附件", "attachments": [
            {"filename": "a.txt", "content_type": "text/plain", "content_base64": base64.b64encode(b"abc").decode()}]})
        (event,) = await reply_events(db, ticket_id)
        assert [(a["filename"], a["url"]) for a in event["attachments"]] == [("a.txt", None)]
        forged = outbound.attachment_url(b"x" * 32, sha256=hashlib.sha256(b"abc").hexdigest(),
                                         content_type="text/plain", expires=2**40)
        assert (await client.get(forged)).status_code == 403
