"""Notifications to employees on WeCom (application messages, ``message/send``) and DingTalk
(work notifications, ``corpconversation/asyncsend_v2``), against the local fakes (tests/fakes.py),
and the pure pieces (error tables, user-id checks, plain text as markdown).

An agent notification's route is ``{"userid": ...}`` on both channels (notifications/rules.py);
customer routes (``external_userid``, ``session_webhook`` / ``sender_staff_id``) are untouched and
tested in test_channel_adapters.py. Nothing here leaves 127.0.0.0/8 (``LoopbackOnly``).
"""

from __future__ import annotations

import importlib.util
import re
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notify_svc.channels import dingtalk as dt
from notify_svc.channels import markdown as md
from notify_svc.channels import wecom as wc
from notify_svc.channels.base import OutboundMessage
from notify_svc.channels.http import AiohttpClient, HttpResponse
from notify_svc.channels.text import utf8_len


def _load_fakes():
    name = "notify_svc_test_fakes"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("fakes.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


fakes = _load_fakes()
pytestmark = pytest.mark.timeout(120)  # a hang guard: property tests of 300 examples take 30 s and more on a loaded 2-core runner

TICKET_URL = "https://desk.example.com/tickets/5b0b6b2e-8f7a-4c52-9d0e-2f1b9c7d4a10"
SUBJECT_ZH = "[#42] SLA 已超时：打印机无法连接"
BODY_ZH = (f"工单 #42（打印机无法连接）的 SLA 指标 first_response 已于 2026-11-30 06:00 UTC 超时。\n"
           f"处理人：李娜\n{TICKET_URL}\n")


class LoopbackOnly:
    """The real transport, refusing any URL whose host is not 127.0.0.1."""

    def __init__(self) -> None:
        self.inner = AiohttpClient(timeout_s=5.0, connect_timeout_s=2.0)

    async def request(self, method, url, *, json=None, headers=None):
        host = urlsplit(url).hostname
        assert host == "127.0.0.1", f"a test tried to reach {host}"
        return await self.inner.request(method, url, json=json, headers=headers)

    async def close(self) -> None:
        await self.inner.close()


def notice(channel: str, route: dict, *, subject: str = SUBJECT_ZH, body: str = BODY_ZH, language: str = "zh-CN",
           delivery_id: uuid.UUID | None = None) -> OutboundMessage:
    return OutboundMessage(delivery_id=delivery_id or uuid.uuid4(), channel=channel, route=route, body_text=body,
                           subject=subject, language=language, automatic=True)


@pytest.fixture
async def wecom_fake():
    async with fakes.FakeWeCom(users=("LiNa", "WangQiang")) as fake:
        yield fake


@pytest.fixture
async def dingtalk_fake():
    async with fakes.FakeDingTalk(staff_ids=("staff-5", "staff-6")) as fake:
        yield fake


@pytest.fixture
async def wecom(wecom_fake):
    adapter = wc.WeComAdapter(
        api_base=wecom_fake.base_url, corp_id=wecom_fake.corp_id, corp_secret=wecom_fake.corp_secret,
        default_open_kfid=wecom_fake.open_kfid, agent_id=str(wecom_fake.agent_id),
        agent_secret=wecom_fake.agent_secret, http=LoopbackOnly())
    yield adapter
    await adapter.close()


@pytest.fixture
async def dingtalk(dingtalk_fake):
    adapter = dt.DingTalkAdapter(
        api_base=dingtalk_fake.base_url, oapi_base=dingtalk_fake.base_url, app_key=dingtalk_fake.app_key,
        app_secret=dingtalk_fake.app_secret, robot_code=dingtalk_fake.robot_code,
        agent_id=str(dingtalk_fake.agent_id), http=LoopbackOnly())
    yield adapter
    await adapter.close()


# --------------------------------------------------------------------------- WeCom application messages


async def test_wecom_agent_route_is_an_application_markdown_message(wecom, wecom_fake):
    """Before issue 10's agent mode the adapter answered ``undeliverable`` ("no WeCom
    external_userid") for ``{"userid": ...}``: every WeCom notification to an agent was lost."""
    result = await wecom.send(notice("wecom", {"userid": "LiNa"}))
    assert result.outcome == "sent", result
    [sent] = wecom_fake.app_messages
    assert sent["userid"] == "LiNa" and sent["agentid"] == wecom_fake.agent_id and sent["msgtype"] == "markdown"
    assert result.provider_id == sent["msgid"]
    content = sent["content"]
    assert content.startswith("**[#42] SLA 已超时：打印机无法连接**\n")
    assert "处理人：李娜" in content and "first_response" in content
    assert f"[{TICKET_URL}]({TICKET_URL})" in content
    [request] = wecom_fake.requests_to("/cgi-bin/message/send")
    assert request.json["enable_duplicate_check"] == 1 and request.json["duplicate_check_interval"] == 1800
    assert "打印机" in request.body.decode("utf-8")  # Chinese unescaped on the wire
    # the application's own secret, never the 微信客服 one
    assert wecom_fake.token_requests_for(wecom_fake.agent_secret) == 1
    assert wecom_fake.token_requests_for(wecom_fake.corp_secret) == 0


async def test_wecom_customer_and_agent_routes_keep_separate_tokens(wecom, wecom_fake):
    assert (await wecom.send(notice("wecom", {"external_userid": "wm-1"}))).outcome == "sent"
    assert (await wecom.send(notice("wecom", {"userid": "LiNa"}))).outcome == "sent"
    assert (await wecom.send(notice("wecom", {"userid": "WangQiang"}))).outcome == "sent"
    assert (await wecom.send(notice("wecom", {"external_userid": "wm-2"}))).outcome == "sent"
    assert [m["external_userid"] for m in wecom_fake.messages] == ["wm-1", "wm-2"]
    assert [m["userid"] for m in wecom_fake.app_messages] == ["LiNa", "WangQiang"]
    assert wecom_fake.token_requests_for(wecom_fake.agent_secret) == 1
    assert wecom_fake.token_requests_for(wecom_fake.corp_secret) == 1


@pytest.mark.parametrize("expiry", ["expired", "unknown"])
async def test_wecom_application_token_refreshed_once(wecom, wecom_fake, expiry):
    assert (await wecom.send(notice("wecom", {"userid": "LiNa"}, subject="one"))).outcome == "sent"
    if expiry == "expired":
        wecom_fake.expire_tokens()  # 42001
    else:
        wecom_fake.tokens.valid.clear()  # 40014: a token WeCom no longer knows
    result = await wecom.send(notice("wecom", {"userid": "LiNa"}, subject="two"))
    assert result.outcome == "sent", result
    assert wecom_fake.token_requests_for(wecom_fake.agent_secret) == 2
    assert len(wecom_fake.app_messages) == 2


async def test_wecom_user_outside_the_visible_range_is_undeliverable(wecom, wecom_fake):
    result = await wecom.send(notice("wecom", {"userid": "ZhaoLei"}))
    assert result.outcome == "undeliverable" and result.code == "81013"
    assert "visible range" in result.reason
    assert wecom_fake.app_messages == []


async def test_wecom_500_then_200_is_retried_by_the_engine_and_sent_once(wecom, wecom_fake):
    wecom_fake.script("/cgi-bin/message/send", fakes.http_error(500))
    message = notice("wecom", {"userid": "LiNa"})
    first = await wecom.send(message)
    assert first.outcome == "transient" and first.code == "500"
    second = await wecom.send(message)  # the delivery engine's next attempt
    assert second.outcome == "sent"
    assert len(wecom_fake.app_messages) == 1


async def test_wecom_resend_of_the_same_notification_is_dropped_by_the_duplicate_check(wecom, wecom_fake):
    """A crash between the provider's answer and our record makes the engine send again: WeCom's
    duplicate check (1800 s) keeps the agent from seeing it twice."""
    message = notice("wecom", {"userid": "LiNa"})
    assert (await wecom.send(message)).outcome == "sent"
    assert (await wecom.send(message)).outcome == "sent"
    assert len(wecom_fake.app_messages) == 1 and len(wecom_fake.duplicates_dropped) == 1


@pytest.mark.parametrize(
    ("answer", "outcome", "code", "retry_after"),
    [
        (fakes.errcode(45009, "api freq out of limit"), "transient", "45009", 60.0),
        (fakes.errcode(-1, "system busy"), "transient", "-1", 5.0),
        (fakes.errcode(60020, "not allow to access from your ip"), "permanent", "60020", None),
        (fakes.errcode(301002, "not allow operate another agent"), "permanent", "301002", None),
        (fakes.errcode(81013, "user & party & tag all invalid"), "undeliverable", "81013", None),
        (fakes.Scripted(200, {"errcode": 0, "errmsg": "ok", "invaliduser": "LiNa", "msgid": "m"}),
         "undeliverable", "invaliduser", None),
    ],
)
async def test_wecom_application_answers(wecom, wecom_fake, answer, outcome, code, retry_after):
    wecom_fake.script("/cgi-bin/message/send", answer)
    result = await wecom.send(notice("wecom", {"userid": "LiNa"}))
    assert (result.outcome, result.code, result.retry_after) == (outcome, code, retry_after), result
    assert result.reason


async def test_wecom_untrusted_ip_at_the_token_endpoint_is_permanent(wecom, wecom_fake):
    wecom_fake.script("/cgi-bin/gettoken", fakes.errcode(60020, "not allow to access from your ip"))
    result = await wecom.send(notice("wecom", {"userid": "LiNa"}))
    assert result.outcome == "permanent" and result.code == "60020" and "IP" in result.reason


@pytest.mark.parametrize("userid", ["@all", "LiNa|WangQiang", "Li Na", "", "  ", 42, None, "-LiNa", "a" * 65])
async def test_wecom_userid_that_is_not_one_user_is_never_sent(wecom, wecom_fake, userid):
    """``touser`` "@all" is the whole visible range and "a|b" two people: a contact id is one user."""
    result = await wecom.send(notice("wecom", {"userid": userid}))
    assert result.outcome == "undeliverable" and "userid" in result.reason
    assert wecom_fake.requests_to("/cgi-bin/message/send") == []


async def test_wecom_application_not_configured_is_permanent_naming_the_settings(wecom_fake):
    adapter = wc.WeComAdapter(api_base=wecom_fake.base_url, corp_id=wecom_fake.corp_id,
                              corp_secret=wecom_fake.corp_secret, http=LoopbackOnly())
    try:
        result = await adapter.send(notice("wecom", {"userid": "LiNa"}))
    finally:
        await adapter.close()
    assert result.outcome == "permanent" and "NOTIFY_WECOM_AGENT_ID" in result.reason
    assert wecom_fake.requests == []


async def test_wecom_text_mode_sends_plain_text(wecom_fake):
    adapter = wc.WeComAdapter(api_base=wecom_fake.base_url, corp_id=wecom_fake.corp_id, corp_secret="",
                              agent_id=str(wecom_fake.agent_id), agent_secret=wecom_fake.agent_secret,
                              agent_msgtype="text", http=LoopbackOnly())
    try:
        assert (await adapter.send(notice("wecom", {"userid": "LiNa"}))).outcome == "sent"
    finally:
        await adapter.close()
    [sent] = wecom_fake.app_messages
    assert sent["msgtype"] == "text"
    assert sent["content"] == f"{SUBJECT_ZH}\n\n{BODY_ZH.strip()}"


async def test_wecom_long_markdown_is_split_within_2048_bytes(wecom, wecom_fake):
    body = "\n".join(f"第 {i} 行：客户反馈打印机无法连接，请尽快处理。" for i in range(120))
    result = await wecom.send(notice("wecom", {"userid": "LiNa"}, body=body))
    assert result.outcome == "sent", result
    parts = [m["content"] for m in wecom_fake.app_messages]
    assert 1 < len(parts) <= wc.MAX_PARTS
    assert all(utf8_len(p) <= 2048 for p in parts)
    assert parts[0].startswith("**") and "第 0 行" in parts[0]


# --------------------------------------------------------------------------- DingTalk work notifications


async def test_dingtalk_agent_route_is_a_markdown_work_notification(dingtalk, dingtalk_fake):
    result = await dingtalk.send(notice("dingtalk", {"userid": "staff-5"}))
    assert result.outcome == "sent", result
    [sent] = dingtalk_fake.work_notices
    assert sent["userid"] == "staff-5" and sent["agent_id"] == dingtalk_fake.agent_id
    assert sent["msgtype"] == "markdown" and sent["title"] == SUBJECT_ZH
    assert result.provider_id == str(sent["task_id"])  # the task id, for getsendresult
    text = sent["text"]
    assert text.startswith("**[#42] SLA 已超时：打印机无法连接**")
    assert "处理人：李娜" in text and f"[{TICKET_URL}]({TICKET_URL})" in text
    assert "  \n  " in text  # DingTalk's documented line break
    [request] = dingtalk_fake.requests_to("/topapi/message/corpconversation/asyncsend_v2")
    assert request.json["userid_list"] == "staff-5" and request.query["access_token"]
    # the oapi token of the app (GET /gettoken), not the robot's v1.0 one
    assert dingtalk_fake.oapi_token_requests == 1 and dingtalk_fake.token_requests == 0
    assert dingtalk_fake.requests_to("/v1.0/robot/oToMessages/batchSend") == []


@pytest.mark.parametrize("expiry", ["expired", "unknown"])
async def test_dingtalk_work_notification_token_refreshed_once(dingtalk, dingtalk_fake, expiry):
    assert (await dingtalk.send(notice("dingtalk", {"userid": "staff-5"}, subject="one"))).outcome == "sent"
    if expiry == "expired":
        dingtalk_fake.expire_tokens()  # 42001
    else:
        dingtalk_fake.oapi_tokens.valid.clear()  # 88 with sub_code 40014
    result = await dingtalk.send(notice("dingtalk", {"userid": "staff-5"}, subject="two"))
    assert result.outcome == "sent", result
    assert dingtalk_fake.oapi_token_requests == 2 and len(dingtalk_fake.work_notices) == 2


async def test_dingtalk_unknown_userid_is_undeliverable(dingtalk, dingtalk_fake):
    result = await dingtalk.send(notice("dingtalk", {"userid": "staff-404"}))
    assert result.outcome == "undeliverable" and result.code == "33012"
    assert dingtalk_fake.work_notices == []


async def test_dingtalk_500_then_200_is_retried_by_the_engine_and_sent_once(dingtalk, dingtalk_fake):
    dingtalk_fake.script("/topapi/message/corpconversation/asyncsend_v2", fakes.http_error(500))
    message = notice("dingtalk", {"userid": "staff-5"})
    assert (await dingtalk.send(message)).outcome == "transient"
    assert (await dingtalk.send(message)).outcome == "sent"
    assert len(dingtalk_fake.work_notices) == 1


@pytest.mark.parametrize(
    ("answer", "outcome", "code"),
    [
        (fakes.errcode(90018, "当前请求被限流"), "transient", "90018"),
        (fakes.errcode(90006, "服务器繁忙"), "transient", "90006"),
        (fakes.errcode(-1, "系统繁忙"), "transient", "-1"),
        (fakes.Scripted(200, {"errcode": 88, "sub_code": "60011", "sub_msg": "没有调用该接口的权限",
                              "errmsg": "ding talk error[subcode=60011]"}), "permanent", "88/60011"),
        (fakes.errcode(60020, "访问ip不在白名单之中"), "permanent", "60020"),
        (fakes.errcode(40035, "不合法的参数"), "permanent", "40035"),
    ],
)
async def test_dingtalk_work_notification_answers(dingtalk, dingtalk_fake, answer, outcome, code):
    dingtalk_fake.script("/topapi/message/corpconversation/asyncsend_v2", answer)
    result = await dingtalk.send(notice("dingtalk", {"userid": "staff-5"}))
    assert (result.outcome, result.code) == (outcome, code), result
    assert result.reason and (outcome != "transient" or result.retry_after)


@pytest.mark.parametrize("userid", ["staff-5,staff-6", "", " ", 7, None, "staff 5"])
async def test_dingtalk_userid_that_is_not_one_user_is_never_sent(dingtalk, dingtalk_fake, userid):
    result = await dingtalk.send(notice("dingtalk", {"userid": userid}))
    assert result.outcome == "undeliverable" and "userid" in result.reason
    assert dingtalk_fake.requests == []


async def test_dingtalk_work_notifications_not_configured_is_permanent_naming_the_setting(dingtalk_fake):
    adapter = dt.DingTalkAdapter(api_base=dingtalk_fake.base_url, oapi_base=dingtalk_fake.base_url,
                                 app_key=dingtalk_fake.app_key, app_secret=dingtalk_fake.app_secret,
                                 http=LoopbackOnly())
    try:
        result = await adapter.send(notice("dingtalk", {"userid": "staff-5"}))
    finally:
        await adapter.close()
    assert result.outcome == "permanent" and "NOTIFY_DINGTALK_AGENT_ID" in result.reason
    assert dingtalk_fake.requests == []


async def test_dingtalk_bad_app_secret_at_gettoken_is_permanent(dingtalk_fake):
    adapter = dt.DingTalkAdapter(api_base=dingtalk_fake.base_url, oapi_base=dingtalk_fake.base_url,
                                 app_key=dingtalk_fake.app_key, app_secret="wrong",
                                 agent_id=str(dingtalk_fake.agent_id), http=LoopbackOnly())
    try:
        result = await adapter.send(notice("dingtalk", {"userid": "staff-5"}))
    finally:
        await adapter.close()
    assert result.outcome == "permanent" and result.code == "40089"


async def test_dingtalk_customer_routes_are_unchanged(dingtalk, dingtalk_fake):
    """A reply to a customer (webhook or staff id) still goes through the robot, as text."""
    url, expires = dingtalk_fake.new_session()
    assert (await dingtalk.send(notice("dingtalk", {"session_webhook": url, "session_webhook_expires_at": expires,
                                                    "sender_staff_id": "staff-6"}))).outcome == "sent"
    assert (await dingtalk.send(notice("dingtalk", {"sender_staff_id": "staff-6"}))).outcome == "sent"
    assert [m["via"] for m in dingtalk_fake.messages] == ["webhook", "api"]
    assert dingtalk_fake.work_notices == []


# --------------------------------------------------------------------------- pure: tables


@pytest.mark.parametrize(
    ("data", "outcome", "code"),
    [
        ({"errcode": 0, "errmsg": "ok", "msgid": "m1"}, "sent", "0"),
        ({"errcode": 0, "errmsg": "ok", "invaliduser": "", "msgid": "m1"}, "sent", "0"),
        ({"errcode": 0, "errmsg": "ok", "invaliduser": "Other|LiNaX"}, "sent", "0"),
        ({"errcode": 0, "errmsg": "ok", "invaliduser": "LiNa"}, "undeliverable", "invaliduser"),
        ({"errcode": 0, "errmsg": "ok", "invaliduser": "x|lina"}, "undeliverable", "invaliduser"),
        ({"errcode": 0, "errmsg": "ok", "unlicenseduser": "LiNa"}, "undeliverable", "unlicenseduser"),
        ({"errcode": 81013}, "undeliverable", "81013"),
        ({"errcode": 40003}, "undeliverable", "40003"),
        ({"errcode": 60111}, "undeliverable", "60111"),
        ({"errcode": 46004}, "undeliverable", "46004"),
        ({"errcode": 45009}, "transient", "45009"),
        ({"errcode": 45033}, "transient", "45033"),
        ({"errcode": -1}, "transient", "-1"),
        ({"errcode": 42001}, "transient", "42001"),
        ({"errcode": 60020}, "permanent", "60020"),
        ({"errcode": 301002}, "permanent", "301002"),
        ({"errcode": 40056}, "permanent", "40056"),
        ({"errcode": 50003}, "permanent", "50003"),
        ({"errcode": 48002}, "permanent", "48002"),
        ({"errcode": 45002}, "permanent", "45002"),
        ({"errcode": 99999, "errmsg": "new"}, "permanent", "99999"),
    ],
)
def test_wecom_application_errcode_table(data, outcome, code):
    result = wc.classify_app_send(data, "LiNa")
    assert (result.outcome, result.code) == (outcome, code)
    assert outcome == "sent" or result.reason


@pytest.mark.parametrize(
    ("status", "data", "outcome", "code"),
    [
        (200, {"errcode": 0, "task_id": 256271667526, "request_id": "x"}, "sent", "0"),
        (200, {"errcode": 33012, "errmsg": "无效的USERID"}, "undeliverable", "33012"),
        (200, {"errcode": 90018}, "transient", "90018"),
        (200, {"errcode": 90002}, "transient", "90002"),
        (200, {"errcode": 90019}, "transient", "90019"),
        (200, {"errcode": 90020}, "transient", "90020"),
        (200, {"errcode": -1}, "transient", "-1"),
        (200, {"errcode": 42001}, "transient", "42001"),
        (200, {"errcode": 88, "sub_code": "40014"}, "transient", "88/40014"),
        (200, {"errcode": 88, "sub_code": "60011"}, "permanent", "88/60011"),
        (200, {"errcode": 88}, "transient", "88"),
        (200, {"errcode": 60020}, "permanent", "60020"),
        (200, {"errcode": 12345, "errmsg": "new"}, "permanent", "12345"),
        (503, None, "transient", "503"),
        (200, None, "transient", "200"),
        (404, {"errcode": 404}, "permanent", "404"),
    ],
)
def test_dingtalk_work_notice_table(status, data, outcome, code):
    result = dt.classify_work_notice(HttpResponse(status, data))
    assert (result.outcome, result.code) == (outcome, code)
    if outcome == "sent":
        assert result.provider_id == "256271667526"


@pytest.mark.parametrize(
    ("data", "rejected"),
    [({"errcode": 40014}, True), ({"errcode": 42001}, True), ({"errcode": 88, "sub_code": "40014"}, True),
     ({"errcode": 88, "sub_code": "42001"}, True), ({"errcode": 88, "sub_code": 40014}, True),
     ({"errcode": 88}, True), ({"errcode": 88, "sub_code": "60011"}, False), ({"errcode": 0}, False), ({"errcode": 33012}, False),
     (None, False), ([], False)],
)
def test_dingtalk_work_notice_token_rejection_table(data, rejected):
    assert dt.work_notice_token_rejected(HttpResponse(200, data)) is rejected


@pytest.mark.parametrize(
    ("value", "wecom", "dingtalk"),
    [("LiNa", "LiNa", "LiNa"), (" LiNa ", "LiNa", "LiNa"), ("li.na@corp-1_x", "li.na@corp-1_x", "li.na@corp-1_x"),
     ("@all", None, "@all"), ("a|b", None, "a|b"), ("a,b", None, None), ("李娜", None, None),
     ("0123456789-1", "0123456789-1", "0123456789-1"), ("", None, None), (None, None, None), (12, None, None),
     ("a" * 64, "a" * 64, "a" * 64), ("a" * 65, None, "a" * 65), ("a" * 129, None, None)],
)
def test_single_userid_tables(value, wecom, dingtalk):
    assert wc.single_userid(value) == wecom
    assert dt.single_userid(value) == dingtalk


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain 文本", "plain 文本"),
        ("[#42] subject", "[#42] subject"),  # brackets alone make no link
        ("[Reset password](https://evil.example/x)",
         r"\[Reset password\](" "[https://evil.example/x](https://evil.example/x))"),
        ("![pixel](http://t.example/p.gif)", r"!\[pixel\](" "[http://t.example/p.gif](http://t.example/p.gif))"),
        ("[x]http://a.example", r"\[x\][http://a.example](http://a.example)"),
        ("[click here http://x.example", r"\[click here [http://x.example](http://x.example)"),
        ("!http://t.example/p.gif", r"\![http://t.example/p.gif](http://t.example/p.gif)"),
        ("[x]: http://a.example", r"\[x\]: [http://a.example](http://a.example)"),
        ("first_response", "first_response"),  # one underscore cannot emphasise
        ("next_response_time", r"next\_response\_time"),
        ("**bold** and *it*", r"\*\*bold\*\* and \*it\*"),
        ("~~gone~~", r"\~\~gone\~\~"),
        ("`code` here `x`", r"\`code\` here \`x\`"),
        ("<font color=\"warning\">红</font>", "&lt;font color=\"warning\">红&lt;/font>"),
        ("<@LiNa> ping", "&lt;@LiNa> ping"),
        ("# heading", r"\# heading"),
        ("> quote", r"\> quote"),
        ("- item", r"\- item"),
        ("+ item", r"\+ item"),
        ("1. item", r"1\. item"),
        ("12) item", r"12\) item"),
        ("    indented code", "indented code"),
        ("a \\ b", "a \\\\ b"),
        ("[a\\](x)", r"[a\\\](x)"),
        ("see https://x.example/a_b)", "see [https://x.example/a_b](https://x.example/a_b))"),
        ("* item", r"\* item"),
        ("url https://x.example/a(b)c.", "url [https://x.example/a(b)c](https://x.example/a%28b%29c)."),
        ("链接：https://x.example/工单。谢谢", "链接：[https://x.example/工单](https://x.example/工单)。谢谢"),
        ("javascript:alert(1)", "javascript:alert(1)"),
    ],
)
def test_markdown_escape_table(text, expected):
    assert md.escape_text(text) == expected


def test_notification_markdown_wecom_and_dingtalk_line_breaks():
    body = "第一行\n\n\n第二行\n"
    assert md.notification_markdown("标题", body) == "**标题**\n\n第一行\n\n第二行"
    assert md.notification_markdown("标题", body, line_break="  \n  ") == "**标题**  \n    \n  第一行  \n    \n  第二行"
    assert md.notification_markdown(None, "only body") == "only body"
    assert md.notification_markdown("  ", "only body") == "only body"


def test_notification_title_is_one_short_plain_line():
    assert md.plain_title("[#42] SLA 已超时：打印机\n无法连接") == "[#42] SLA 已超时：打印机 无法连接"
    assert md.plain_title("x" * 200) == "x" * 63 + "…"
    assert md.plain_title(None, fallback="通知") == "通知"


_LINK = re.compile(r"(?<!\\)\[(?:[^\[\]\\]|\\.)*\]\(")
_TARGET = re.compile(r"(?<!\\)\]\([^)\s]*\)")


def _bare(text: str, mark: str) -> int:
    """How many times ``mark`` occurs in markdown ``text`` not escaped by a backslash."""
    return sum(1 for token in re.findall(r"\\.|.", text, re.S) if token == mark)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(list("ab 1.#>-+*_~`[]()!<:|\\\n工") + ["http://x.y/", "https://e.x/a"]),
                max_size=40).map("".join))
def test_markdown_escape_laws(text):
    """Whatever the customer wrote: no link or image but the links we make from a URL (whose
    visible text is the URL itself, never an image), no HTML tag, no line that starts a heading,
    quote, list or code block, and no pair of emphasis marks."""
    out = md.escape_text(text)
    assert "<" not in out
    for match in _LINK.finditer(out):
        label = match.group(0)[1:-2].replace("\\", "")
        assert label.startswith(("http://", "https://")), out
        before = out[: match.start()]
        assert not before.endswith("!") or before.endswith("\\!"), out
    for line in out.split("\n"):
        assert not re.match(r"[#>+=*]|-|\d+[.)]( |$)|\s", line), line
    outside_targets = _TARGET.sub("]", out)
    for mark in "*_~`":
        assert _bare(outside_targets, mark) < 2, out
