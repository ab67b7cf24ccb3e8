"""Outbound chat replies end to end: a customer writes on WeChat, WeCom or DingTalk through the
gateway's intake, an agent answers in public, and the answer reaches the provider's API — the
session's fakes (conftest.chat_fakes, services/notify-svc/tests/fakes.py), which the stack's
notify-svc is pointed at — addressed to that customer with its Chinese text intact, and the
message ends ``delivery_status: "sent"``. Then the providers' hard cases, where only the real
processes show the whole chain (adapter, dispatcher, delivery record, ticket-svc's status):

- the cached access token refused once (WeChat and WeCom 42001, DingTalk's API 401): one
  refresh, one delivery, one attempt;
- the 48-hour window (WeChat and WeCom 45015): ``undeliverable`` with its reason at once, no retry;
- a DingTalk session webhook refused: the reply goes through the robot's one-to-one API instead;
- HTTP 500 three times then 200: retried by the dispatcher (the stack's backoff base is short),
  delivered once — four sends seen, one message kept.

The fakes are shared by the session, so every check filters by this test's own recipient."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest

from .conftest import eventually

pytestmark = pytest.mark.timeout(120)

WECHAT_SEND = "/cgi-bin/message/custom/send"
WECOM_SEND = "/cgi-bin/kf/send_msg"


def _xml(sender: str, to: str, text: str, msg_id: str, extra: str = "") -> bytes:
    return (f"<xml><ToUserName><![CDATA[{to}]]></ToUserName><FromUserName><![CDATA[{sender}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{text}]]></Content><MsgId>{msg_id}</MsgId>{extra}</xml>").encode()


async def open_wechat_ticket(gw, channel_key_headers) -> tuple[str, str]:
    """A WeChat customer's first message (unsigned: the test stack sets no TICKET_WECHAT_TOKEN)
    -> (ticket id, the customer's openid)."""
    openid = f"o_e2e_out_{uuid.uuid4().hex[:12]}"
    r = await gw.post("/v1/channels/wechat/inbound",
                      content=_xml(openid, "gh_e2e_service", "请问发票什么时候开？", str(time.time_ns())),
                      headers={**channel_key_headers["wechat"], "Content-Type": "application/xml"})
    assert r.status_code == 201, r.text
    return r.json()["ticket_id"], openid


async def open_wecom_ticket(gw, channel_key_headers, open_kfid: str) -> tuple[str, str]:
    external_userid = f"wm_e2e_{uuid.uuid4().hex[:12]}"
    r = await gw.post("/v1/channels/wecom/inbound",
                      content=_xml(external_userid, "ww-test-corp", "打印机又坏了，怎么办？", str(time.time_ns()),
                                   f"<OpenKfId><![CDATA[{open_kfid}]]></OpenKfId>"),
                      headers={**channel_key_headers["wecom"], "Content-Type": "application/xml"})
    assert r.status_code == 201, r.text
    return r.json()["ticket_id"], external_userid


async def open_dingtalk_ticket(gw, channel_key_headers, ding) -> tuple[str, str]:
    """A robot callback carrying a session webhook on the fake's origin -> (ticket id, session)."""
    webhook, expires_at = ding.new_session()
    msg_id = f"ding-e2e-{uuid.uuid4().hex[:12]}"
    body = {"msgtype": "text", "text": {"content": "报销单提交不了"}, "msgId": msg_id,
            "createAt": int(time.time() * 1000), "conversationType": "1", "conversationId": f"cid-{msg_id}",
            "senderId": f"$:LWCP_v1:${msg_id}", "senderNick": "王五", "senderStaffId": f"staff-{msg_id}",
            "chatbotUserId": "bot", "sessionWebhook": webhook, "sessionWebhookExpiredTime": expires_at}
    r = await gw.post("/v1/channels/dingtalk/inbound", content=json.dumps(body, ensure_ascii=False).encode(),
                      headers={**channel_key_headers["dingtalk"], "Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    return r.json()["ticket_id"], webhook.rsplit("session=", 1)[1]


async def reply(gw, admin_headers, ticket_id: str, body: str) -> str:
    r = await gw.post(f"/v1/tickets/{ticket_id}/messages", headers=admin_headers, json={"body": body})
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def final_status(gw, admin_headers, ticket_id: str, message_id: str, *, timeout: float = 60) -> dict:
    """The message once its delivery_status is final (sent, failed or undeliverable)."""
    async def settled():
        r = await gw.get(f"/v1/tickets/{ticket_id}/messages", headers=admin_headers)
        assert r.status_code == 200, r.text
        found = {m["id"]: m for m in r.json()["items"]}[message_id]
        return found if found.get("delivery_status") in ("sent", "failed", "undeliverable") else None

    return await eventually(settled, timeout=timeout)


async def reply_delivery(gw, admin_headers, ticket_id: str, message_id: str) -> dict:
    r = await gw.get("/v1/deliveries", params={"ticket_id": ticket_id, "kind": "reply"}, headers=admin_headers)
    assert r.status_code == 200, r.text
    [item] = [d for d in r.json()["items"] if d["message_id"] == message_id]
    detail = await gw.get(f"/v1/deliveries/{item['id']}", headers=admin_headers)
    assert detail.status_code == 200, detail.text
    return detail.json()


def sends_to(fake, path: str, field: str, recipient: str, text: str) -> list:
    """The requests that tried to send ``text`` to ``recipient`` (the customer also gets an
    automatic acknowledgement of the new ticket on the same channel: not counted)."""
    return [r for r in list(fake.requests) if r.path == path and isinstance(r.json, dict)
            and r.json.get(field) == recipient and text in ((r.json.get("text") or {}).get("content") or "")]


async def test_wechat_reply_reaches_the_customer(gw, chat_fakes, channel_key_headers, admin_headers):
    wechat = chat_fakes.wechat
    ticket_id, openid = await open_wechat_ticket(gw, channel_key_headers)
    answer = "您好，发票已于今天开出，请在“我的订单”中查看。"
    message_id = await reply(gw, admin_headers, ticket_id, answer)
    message = await final_status(gw, admin_headers, ticket_id, message_id)
    assert message["delivery_status"] == "sent", message
    got = [m for m in list(wechat.messages) if m["openid"] == openid and answer in m["content"]]
    assert len(got) == 1, wechat.messages
    assert got[0]["app_id"] == wechat.app_id


async def test_wecom_reply_reaches_the_customer(gw, chat_fakes, channel_key_headers, admin_headers):
    wecom = chat_fakes.wecom
    ticket_id, user = await open_wecom_ticket(gw, channel_key_headers, wecom.open_kfid)
    answer = "您好，工程师明天上午十点上门维修打印机。"
    message_id = await reply(gw, admin_headers, ticket_id, answer)
    message = await final_status(gw, admin_headers, ticket_id, message_id)
    assert message["delivery_status"] == "sent", message
    got = [m for m in list(wecom.messages) if m["external_userid"] == user and answer in m["content"]]
    assert len(got) == 1, wecom.messages
    assert got[0]["open_kfid"] == wecom.open_kfid


async def test_dingtalk_reply_goes_through_the_session_webhook(gw, chat_fakes, channel_key_headers, admin_headers):
    ding = chat_fakes.dingtalk
    ticket_id, session = await open_dingtalk_ticket(gw, channel_key_headers, ding)
    answer = "您好，报销系统已恢复，请重新提交。"
    message_id = await reply(gw, admin_headers, ticket_id, answer)
    message = await final_status(gw, admin_headers, ticket_id, message_id)
    assert message["delivery_status"] == "sent", message
    got = [m for m in list(ding.messages) if m.get("session") == session and answer in m["content"]]
    assert len(got) == 1, ding.messages
    assert got[0]["via"] == "webhook"


@pytest.mark.parametrize("channel", ["wechat", "wecom"])
async def test_a_refused_token_is_refreshed_once(gw, chat_fakes, channel_key_headers, admin_headers, channel):
    fake = getattr(chat_fakes, channel)
    if channel == "wechat":
        ticket_id, user = await open_wechat_ticket(gw, channel_key_headers)
        path, field = WECHAT_SEND, "touser"
    else:
        ticket_id, user = await open_wecom_ticket(gw, channel_key_headers, fake.open_kfid)
        path, field = WECOM_SEND, "touser"
    # a first reply makes sure notify-svc holds a token the fake then refuses
    first = await reply(gw, admin_headers, ticket_id, "您好，已收到。")
    assert (await final_status(gw, admin_headers, ticket_id, first))["delivery_status"] == "sent"
    answer = f"令牌过期后依然送达：请查收。{uuid.uuid4().hex[:6]}"
    tokens_before = fake.token_requests
    fake.expire_tokens()

    message_id = await reply(gw, admin_headers, ticket_id, answer)
    message = await final_status(gw, admin_headers, ticket_id, message_id)
    assert message["delivery_status"] == "sent", message
    assert fake.token_requests - tokens_before == 1  # one refresh
    assert len(sends_to(fake, path, field, user, answer)) == 2  # refused once, then accepted
    delivery = await reply_delivery(gw, admin_headers, ticket_id, message_id)
    assert [a["outcome"] for a in delivery["attempts_log"]] == ["sent"]  # the refresh is inside one attempt
    content = [m["content"] for m in list(fake.messages) if answer in m["content"]]
    assert len(content) == 1


async def test_wechat_48_hour_window_is_undeliverable_without_retries(gw, chat_fakes, channel_key_headers,
                                                                      admin_headers):
    wechat = chat_fakes.wechat
    ticket_id, openid = await open_wechat_ticket(gw, channel_key_headers)
    wechat.outside_window.add(openid)
    answer = "您好，这条消息在 48 小时之外。"
    message_id = await reply(gw, admin_headers, ticket_id, answer)
    message = await final_status(gw, admin_headers, ticket_id, message_id)
    assert message["delivery_status"] == "undeliverable", message
    delivery = await reply_delivery(gw, admin_headers, ticket_id, message_id)
    assert delivery["status"] == "undeliverable"
    assert "48" in (delivery.get("reason") or ""), delivery
    assert [(a["outcome"], a["code"]) for a in delivery["attempts_log"]] == [("undeliverable", "45015")]
    # no retry follows: one would come within the test stack's short backoff (about a second)
    await asyncio.sleep(3)
    assert len(sends_to(wechat, WECHAT_SEND, "touser", openid, answer)) == 1
    assert not [m for m in list(wechat.messages) if m["openid"] == openid]  # (nor the acknowledgement)


@pytest.mark.parametrize("channel", ["wechat", "wecom", "dingtalk"])
async def test_500_three_times_then_200_is_delivered_once(gw, chat_fakes, channel_key_headers, admin_headers,
                                                         channel):
    fakes = chat_fakes.module
    fake = getattr(chat_fakes, channel)
    answer = f"您好：服务器恢复后，这条回复只送达一次。{uuid.uuid4().hex[:6]}"
    if channel == "wechat":
        ticket_id, user = await open_wechat_ticket(gw, channel_key_headers)
        path, sends = WECHAT_SEND, lambda: sends_to(fake, WECHAT_SEND, "touser", user, answer)
        kept = lambda: [m for m in list(fake.messages) if m["openid"] == user]  # noqa: E731
    elif channel == "wecom":
        ticket_id, user = await open_wecom_ticket(gw, channel_key_headers, fake.open_kfid)
        path, sends = WECOM_SEND, lambda: sends_to(fake, WECOM_SEND, "touser", user, answer)
        kept = lambda: [m for m in list(fake.messages) if m["external_userid"] == user]  # noqa: E731
    else:
        ticket_id, user = await open_dingtalk_ticket(gw, channel_key_headers, fake)
        path = "/robot/sendBySession"
        sends = lambda: [r for r in list(fake.requests) if r.path == path and r.query.get("session") == user  # noqa: E731
                         and answer in r.body.decode("utf-8", "replace")]
        kept = lambda: [m for m in list(fake.messages) if m.get("session") == user]  # noqa: E731
    # the scripted failures must meet this reply, not the acknowledgement of the new ticket
    await _quiet(gw, admin_headers, ticket_id)
    fake.script(path, *[fakes.http_error(500)] * 3)
    message_id = await reply(gw, admin_headers, ticket_id, answer)
    message = await final_status(gw, admin_headers, ticket_id, message_id, timeout=90)
    assert message["delivery_status"] == "sent", message
    assert len(sends()) == 4
    assert len([m for m in kept() if answer in m["content"]]) == 1
    delivery = await reply_delivery(gw, admin_headers, ticket_id, message_id)
    assert [a["outcome"] for a in delivery["attempts_log"]] == ["transient"] * 3 + ["sent"]


async def _quiet(gw, admin_headers, ticket_id: str) -> None:
    """Wait until the ticket has no delivery queued or in flight, twice in a row a second apart."""
    calm = 0
    deadline = time.monotonic() + 30
    while calm < 2 and time.monotonic() < deadline:
        r = await gw.get("/v1/deliveries", params={"ticket_id": ticket_id}, headers=admin_headers)
        assert r.status_code == 200, r.text
        busy = [d for d in r.json()["items"] if d["status"] in ("queued", "sending")]
        calm = 0 if busy else calm + 1
        await asyncio.sleep(1.0)


async def test_wecom_48_hour_window_is_undeliverable_without_retries(gw, chat_fakes, channel_key_headers,
                                                                     admin_headers):
    """WeCom answers 45015 too outside the window (the fake has no window of its own: scripted)."""
    wecom = chat_fakes.wecom
    ticket_id, user = await open_wecom_ticket(gw, channel_key_headers, wecom.open_kfid)
    await _quiet(gw, admin_headers, ticket_id)  # the scripted answer must meet the reply
    wecom.script(WECOM_SEND, chat_fakes.module.errcode(45015, "response out of time limit"))
    answer = f"您好，这条消息在 48 小时之外。{uuid.uuid4().hex[:6]}"
    message_id = await reply(gw, admin_headers, ticket_id, answer)
    message = await final_status(gw, admin_headers, ticket_id, message_id)
    assert message["delivery_status"] == "undeliverable", message
    delivery = await reply_delivery(gw, admin_headers, ticket_id, message_id)
    assert "48" in (delivery.get("reason") or ""), delivery
    assert [(a["outcome"], a["code"]) for a in delivery["attempts_log"]] == [("undeliverable", "45015")]
    await asyncio.sleep(3)  # no retry follows
    assert len(sends_to(wecom, WECOM_SEND, "touser", user, answer)) == 1
    assert not [m for m in list(wecom.messages) if answer in m["content"]]


async def test_dingtalk_falls_back_to_the_api_and_refreshes_a_refused_token(gw, chat_fakes, channel_key_headers,
                                                                             admin_headers):
    """The session webhook refused (expired early on DingTalk's side): the reply goes to the
    customer's staff id through the robot's one-to-one API; then the API's cached token is
    refused (401) once: one refresh, one delivery."""
    ding = chat_fakes.dingtalk
    ticket_id, session = await open_dingtalk_ticket(gw, channel_key_headers, ding)
    await _quiet(gw, admin_headers, ticket_id)
    ding.sessions.pop(session)  # the fake now answers this session as expired
    first = f"您好，会话已过期，改用机器人单聊发送。{uuid.uuid4().hex[:6]}"
    message_id = await reply(gw, admin_headers, ticket_id, first)
    assert (await final_status(gw, admin_headers, ticket_id, message_id))["delivery_status"] == "sent"
    via_api = [m for m in list(ding.messages) if first in m["content"]]
    assert [m["via"] for m in via_api] == ["api"], ding.messages
    staff_id = via_api[0]["staff_id"]
    assert staff_id.startswith("staff-ding-e2e-")

    tokens_before = ding.token_requests
    ding.expire_tokens()
    second = f"令牌过期后依然送达。{uuid.uuid4().hex[:6]}"
    message_id = await reply(gw, admin_headers, ticket_id, second)
    assert (await final_status(gw, admin_headers, ticket_id, message_id))["delivery_status"] == "sent"
    assert ding.token_requests - tokens_before == 1
    tried = [r for r in list(ding.requests) if r.path == "/v1.0/robot/oToMessages/batchSend"
             and isinstance(r.json, dict) and second in (r.json.get("msgParam") or "")]
    assert len(tried) == 2  # refused once, then accepted
    assert [(m["via"], m["staff_id"]) for m in list(ding.messages) if second in m["content"]] == [("api", staff_id)]
