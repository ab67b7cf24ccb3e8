"""Where a reply goes and how it is addressed (conversation/outbound.py, pure): table tests per
channel, the attachment capability, the event size bound, the DingTalk webhook origin check."""

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpdesk_common import events
from ticket_svc.channels.dingtalk import webhook_origin_allowed
from ticket_svc.conversation import outbound

KEY = b"k" * 32


def ticket(channel, requester=None, cc=(), key=None):
    return {"id": uuid.uuid4(), "channel": channel, "requester": requester or {}, "cc": list(cc),
            "conversation_key": key}


@pytest.mark.parametrize("channel, requester, key, expected_channel, reason", [
    ("email", {"email": "a@example.com"}, None, "email", None),
    ("web", {"email": "a@example.com"}, None, "email", None),
    ("phone", {"email": "a@example.com", "phone": "+8613800138000"}, None, "email", None),
    ("api", {"email": "a@example.com"}, None, "email", None),
    (None, {"email": "a@example.com"}, None, "email", None),
    ("phone", {"phone": "+8613800138000"}, None, None, "no e-mail address for a phone ticket"),
    ("web", {"name": "x"}, None, None, "no e-mail address for a web form ticket"),
    ("api", {"external_id": "crm-1"}, None, None, "no e-mail address for an API ticket"),
    ("email", {"name": "no address"}, None, None, "no e-mail address for the requester"),
    ("chat", {"email": "v@example.com"}, "chat:c1", "chat", None),
    ("chat", {}, None, None, "no chat conversation to answer on"),
    ("wechat", {"wechat_openid": "o1"}, "wechat:o1", "wechat", None),
    ("wechat", {}, None, None, "no WeChat openid for this customer"),
    ("wecom", {"external_id": "wecom:zhang"}, "wecom:zhang", "wecom", None),
    ("wecom", {}, None, None, "no WeCom user id for this customer"),
    ("dingtalk", {"external_id": "dingtalk:s1"}, "dingtalk:cid", None,
     "no DingTalk session webhook or staff id to answer this conversation"),
])
def test_the_channel_to_answer_on(channel, requester, key, expected_channel, reason):
    plan = outbound.plan(ticket(channel, requester, key=key))
    assert (plan.channel, plan.reason) == (expected_channel, reason)
    assert plan.deliverable is (expected_channel is not None)


def test_email_route_and_threading():
    thread = [  # newest first, as repository.email_thread answers
        {"email_message_id": "ticket-7-b@helpdesk.invalid", "author_kind": "agent", "sent_to": None},
        {"email_message_id": "c2@mail.example", "author_kind": "customer", "sent_to": {"to": ["help@shop.example", "x@y.z"]}},
        {"email_message_id": "x" * 300, "author_kind": "customer", "sent_to": {"to": ["other@shop.example"]}},
        {"email_message_id": "c1@mail.example", "author_kind": "customer", "sent_to": {"to": ["first@shop.example"]}},
    ]
    plan = outbound.plan(ticket("email", {"email": "buyer@example.com"}, cc=["boss@example.com"]), thread=thread)
    assert plan.route == {"to": "buyer@example.com", "cc": ["boss@example.com"], "from": "help@shop.example"}
    assert plan.in_reply_to == "c2@mail.example"
    # oldest first, an id too long for a header left out
    assert plan.references == ("c1@mail.example", "c2@mail.example", "ticket-7-b@helpdesk.invalid")


def test_a_web_ticket_answered_by_email_has_no_from_and_threads_our_replies():
    thread = [{"email_message_id": "ticket-1-a@helpdesk.invalid", "author_kind": "agent", "sent_to": None}]
    plan = outbound.plan(ticket("web", {"email": "a@example.com"}), thread=thread)
    assert plan.route == {"to": "a@example.com", "cc": []}
    assert plan.in_reply_to is None and plan.references == ("ticket-1-a@helpdesk.invalid",)


def test_chat_platform_routes():
    wechat = outbound.plan(ticket("wechat", {"wechat_openid": "o1"}, key="wechat:o1"),
                           stored_route={"openid": "o1", "original_id": "gh_shop"}, wechat_app_ids={"gh_shop": "wx123"})
    assert wechat.route == {"openid": "o1", "app_id": "wx123", "original_id": "gh_shop"}
    unmapped = outbound.plan(ticket("wechat", {"wechat_openid": "o1"}), stored_route={"original_id": "gh_other"})
    assert unmapped.route == {"openid": "o1", "original_id": "gh_other"}  # notify-svc's default account

    wecom = outbound.plan(ticket("wecom", {"external_id": "wecom:zhang"}, key="wecom:zhang"),
                          stored_route={"external_userid": "zhang", "open_kfid": "wk1", "corp_id": "ww1"})
    assert wecom.route == {"external_userid": "zhang", "open_kfid": "wk1", "corp_id": "ww1"}

    hook = "https://oapi.dingtalk.com/robot/sendBySession?session=s3cret"
    dingtalk = outbound.plan(ticket("dingtalk", key="dingtalk:cid-1"), stored_route={
        "session_webhook": hook, "session_webhook_expires_at": 1_764_000_000_000, "sender_staff_id": "staff-5",
        "robot_code": "ding1", "conversation_id": "cid-1"})
    assert dingtalk.route == {"session_webhook": hook, "session_webhook_expires_at": 1_764_000_000_000,
                              "sender_staff_id": "staff-5", "robot_code": "ding1", "conversation_id": "cid-1"}
    staff_only = outbound.plan(ticket("dingtalk", key="dingtalk:cid-2"), stored_route={"sender_staff_id": "s"})
    assert staff_only.route == {"sender_staff_id": "s", "conversation_id": "cid-2"}

    chat = outbound.plan(ticket("chat", key="chat:abc"))
    assert chat.route == {"conversation_key": "chat:abc"}


def test_attachment_capability():
    sha = "a" * 64
    url = outbound.attachment_url(KEY, sha256=sha, content_type="image/png", expires=2_000)
    assert url.startswith(f"/internal/attachments/{sha}?type=image%2Fpng&exp=2000&sig=")
    sig = url.rsplit("=", 1)[1]
    assert outbound.verify_attachment(KEY, sha256=sha, content_type="image/png", expires=2_000, sig=sig, now=1_999)
    assert not outbound.verify_attachment(KEY, sha256=sha, content_type="image/png", expires=2_000, sig=sig, now=2_001)
    for changed in ({"sha256": "b" * 64}, {"content_type": "text/html"}, {"expires": 3_000}):
        args = {"sha256": sha, "content_type": "image/png", "expires": 2_000, **changed}
        assert not outbound.verify_attachment(KEY, **args, sig=sig, now=0)
    assert not outbound.verify_attachment(b"x" * 32, sha256=sha, content_type="image/png", expires=2_000, sig=sig, now=0)
    assert not outbound.verify_attachment(KEY, sha256=sha, content_type="image/png", expires=2_000, sig="é", now=0)


def _builder(limit_probe=None):
    def build(text, html):
        return events.TicketReplyRequested(
            source="t", subject="s", data=events.TicketReplyRequestedData(
                ticket_id=uuid.uuid4(), message_id=uuid.uuid4(), subject="s", channel="email",
                recipient=events.Requester(email="a@example.com"), body_text=text, body_html=html,
                requested_at=datetime.now(UTC)))
    return build


def test_an_event_that_fits_is_untouched_and_html_goes_first():
    small = outbound.fitted(_builder(), body_text="hi", body_html="<p>hi</p>", limit=10_000)
    assert (small.data.body_text, small.data.body_html) == ("hi", "<p>hi</p>")
    no_html = outbound.fitted(_builder(), body_text="hi", body_html="<p>" + "x" * 20_000 + "</p>", limit=10_000)
    assert (no_html.data.body_text, no_html.data.body_html) == ("hi", None)


@settings(max_examples=30, deadline=None)
@given(text=st.text(min_size=1, max_size=3_000), limit=st.integers(min_value=1_500, max_value=8_000))
def test_a_cut_reply_is_within_the_limit_and_says_so(text, limit):
    evt = outbound.fitted(_builder(), body_text=text, body_html=None, limit=limit)
    size = len(events.encode(evt))
    if evt.data.body_text != text:
        assert size <= limit and evt.data.body_text.endswith(outbound.TRUNCATION_NOTE)
        assert text.startswith(evt.data.body_text[: -len(outbound.TRUNCATION_NOTE)])


@pytest.mark.parametrize("url, allowed", [
    ("https://oapi.dingtalk.com/robot/sendBySession?session=abc", True),
    ("https://api.dingtalk.com/v1.0/robot", True),
    ("https://OAPI.DingTalk.com./robot/x", True),
    ("https://oapi.dingtalk.com:443/robot/x", True),
    ("http://oapi.dingtalk.com/robot/x", False),
    ("https://oapi.dingtalk.com:8443/robot/x", False),
    ("https://oapi.dingtalk.com.evil.example/robot", False),
    ("https://evil.example/?x=oapi.dingtalk.com", False),
    ("https://user:pw@oapi.dingtalk.com/robot", False),
    ("https://oapi.dingtalk.com@evil.example/robot", False),
    ("http://[/broken", False),
    ("", False),
    ("javascript:alert(1)", False),
])
def test_dingtalk_session_webhook_origins(url, allowed):
    assert webhook_origin_allowed(url, ["https://oapi.dingtalk.com", "https://api.dingtalk.com"]) is allowed


def _dingtalk_callback(**extra):
    import json

    return json.dumps({"msgtype": "text", "text": {"content": "打印机坏了"}, "msgId": "m1", "conversationId": "cid-1",
                       "senderStaffId": "staff-5", "senderId": "$:abc", **extra}).encode()


@pytest.mark.parametrize("expires, kept", [
    (1_900_000_000_000, 1_900_000_000_000), ("1900000000000", 1_900_000_000_000), (1.9e12, 1_900_000_000_000),
    ("soon", None), (True, None), (-1, None), (None, None), ([1], None),
])
def test_dingtalk_parser_keeps_the_route_apart_from_the_message(expires, kept):
    from ticket_svc.channels.dingtalk import parse_dingtalk

    hook = "https://oapi.dingtalk.com/robot/sendBySession?session=s3cret"
    message = parse_dingtalk(_dingtalk_callback(sessionWebhook=hook, sessionWebhookExpiredTime=expires,
                                                robotCode="dingbot"))
    expected = {"session_webhook": hook, "conversation_id": "cid-1", "sender_staff_id": "staff-5",
                "robot_code": "dingbot"}
    expected["session_webhook_expires_at"] = kept  # null when unknown: never an older webhook's expiry
    assert message.reply_route == expected
    assert "s3cret" not in repr(message.metadata) and message.metadata["session_webhook_host"] == "oapi.dingtalk.com"


def test_dingtalk_odd_robot_code_and_no_webhook():
    from ticket_svc.channels.dingtalk import parse_dingtalk

    message = parse_dingtalk(_dingtalk_callback(robotCode=12, sessionWebhookExpiredTime=5))
    assert message.reply_route == {"conversation_id": "cid-1", "sender_staff_id": "staff-5"}


def test_wechat_and_wecom_parsers_give_their_routes():
    from ticket_svc.channels.wechat import parse_wechat_xml

    xml = (b"<xml><ToUserName>gh_acc</ToUserName><FromUserName>o123</FromUserName><CreateTime>1763861400"
           b"</CreateTime><MsgType>text</MsgType><Content>hi</Content><MsgId>1</MsgId></xml>")
    assert parse_wechat_xml(xml).reply_route == {"openid": "o123", "original_id": "gh_acc"}
    wecom = xml.replace(b"</xml>", b"<AgentID>1000002</AgentID></xml>")
    assert parse_wechat_xml(wecom, channel="wecom").reply_route == {
        "external_userid": "o123", "corp_id": "gh_acc", "agent_id": "1000002"}


def test_the_attachment_key_setting(monkeypatch):
    from pydantic import ValidationError

    from ticket_svc.config import Settings

    monkeypatch.setenv("TICKET_ATTACHMENT_URL_KEY", "too-short")
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings()
    monkeypatch.setenv("TICKET_ATTACHMENT_URL_KEY", "")
    assert Settings().attachment_url_key is None  # unset: links are null, and the app says so at start
    monkeypatch.setenv("TICKET_ATTACHMENT_URL_KEY", "k" * 32)
    assert Settings().attachment_url_key.get_secret_value() == "k" * 32
    monkeypatch.setenv("TICKET_DINGTALK_WEBHOOK_ORIGINS", '["http://127.0.0.1:9999"]')
    assert Settings().dingtalk_webhook_origins == ["http://127.0.0.1:9999"]
