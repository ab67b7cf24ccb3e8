"""DingTalk robot callback JSON -> InboundMessage or Ignored; the HMAC signature with its
one-hour window; bad and arbitrary input."""

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticket_svc.channels.dingtalk import dingtalk_sign, parse_dingtalk, verify_dingtalk_sign
from ticket_svc.channels.inbound import Ignored, InboundMessage, InvalidPayload, Sender

WEBHOOK = "https://oapi.dingtalk.com/robot/sendBySession?session=c5f0ea6fa1b2a8d5e7f9e3b1a6c4d2e0"


def callback(**over) -> bytes:
    doc = {"msgtype": "text", "text": {"content": " 打印机又坏了，三楼东侧 "}, "msgId": "msgq4Jm6tZ4YpDZ5Tq3Rl2X5g==",
           "createAt": 1763861400000, "conversationType": "2", "conversationId": "cidP8Gx3Qm1b2Wd==",
           "conversationTitle": "IT 支持群", "senderId": "$:LWCP_v1:$abc", "senderNick": "王五",
           "senderStaffId": "staff-5", "senderCorpId": "ding0123", "chatbotUserId": "$:LWCP_v1:$bot",
           "chatbotCorpId": "ding0123", "isAdmin": False, "sessionWebhook": WEBHOOK,
           "sessionWebhookExpiredTime": 1763868600000, "robotCode": "dingrobot", "isInAtList": True,
           "atUsers": [{"dingtalkId": "$:LWCP_v1:$bot"}]}
    doc.update(over)
    return json.dumps({k: v for k, v in doc.items() if v is not ...}, ensure_ascii=False).encode()


def test_a_group_text_message():
    msg = parse_dingtalk(callback())
    assert isinstance(msg, InboundMessage)
    assert (msg.channel, msg.external_id, msg.conversation_key) == \
        ("dingtalk", "msgq4Jm6tZ4YpDZ5Tq3Rl2X5g==", "dingtalk:cidP8Gx3Qm1b2Wd==")
    assert msg.body_text == "打印机又坏了，三楼东侧"
    assert msg.sender == Sender(name="王五", dingtalk_id="staff-5")
    assert msg.sender.identities() == {"external_id": "dingtalk:staff-5"}
    assert msg.sent_at == datetime(2025, 11, 23, 1, 30, tzinfo=UTC)
    assert msg.metadata == {"msgtype": "text", "conversation_type": "2", "conversation_title": "IT 支持群",
                            "sender_corp_id": "ding0123", "is_admin": False,
                            "session_webhook_host": "oapi.dingtalk.com"}
    assert "session=" not in json.dumps(msg.metadata)  # the webhook's secret never leaves the parser


@pytest.mark.parametrize(("over", "text", "extra"), [
    # a single chat in English from an external user (no staff id)
    ({"conversationType": "1", "conversationTitle": ..., "senderStaffId": ..., "senderNick": "Alice",
      "text": {"content": "My laptop will not boot."}},
     "My laptop will not boot.", {"conversation_type": "1"}),
    ({"msgtype": "richText", "text": ..., "content": {"richText": [
        {"text": "报错截图如下："}, {"type": "picture", "downloadCode": "dc-1", "pictureDownloadCode": "pdc-1"},
        {"text": "\n请尽快处理"}]}},
     "报错截图如下：[picture]\n请尽快处理", {"download_codes": ["dc-1"]}),
    ({"msgtype": "picture", "text": ..., "content": {"downloadCode": "dc-2", "pictureDownloadCode": "pdc-2"}},
     "[picture]", {"download_codes": ["dc-2", "pdc-2"]}),
    ({"msgtype": "audio", "text": ..., "content": {"duration": 4000, "downloadCode": "dc-3", "recognition": "帮我查一下报销进度"}},
     "帮我查一下报销进度", {"download_codes": ["dc-3"]}),
    ({"msgtype": "audio", "text": ..., "content": {"duration": 4000, "downloadCode": "dc-4"}},
     "[voice message]", {"download_codes": ["dc-4"]}),
    ({"msgtype": "file", "text": ..., "content": {"downloadCode": "dc-5", "fileName": "报销单.xlsx", "spaceId": "1"}},
     "[file] 报销单.xlsx", {"download_codes": ["dc-5"]}),
    ({"msgtype": "video", "text": ..., "content": {"duration": "12", "downloadCode": "dc-6", "videoType": "mp4"}},
     "[video]", {"download_codes": ["dc-6"]}),
])
def test_message_types(over, text, extra):
    msg = parse_dingtalk(callback(**over))
    assert msg.body_text == text
    for key, value in extra.items():
        assert msg.metadata[key] == value


@pytest.mark.parametrize(("webhook", "host"), [
    ("https://oapi.dingtalk.com/robot/sendBySession?session=x", "oapi.dingtalk.com"),
    ("https://api.dingtalk.com:443/v1.0/robot/x?session=y", "api.dingtalk.com"),
    ("http://[", ""),  # unparseable: no host, no crash
    ("not a url", ""),
])
def test_only_the_webhook_host_is_kept(webhook, host):
    assert parse_dingtalk(callback(sessionWebhook=webhook)).metadata["session_webhook_host"] == host


def test_sender_falls_back_to_sender_id_and_optional_fields_may_be_absent():
    msg = parse_dingtalk(callback(senderStaffId=..., senderNick=..., createAt=..., sessionWebhook=..., isAdmin=...,
                                  conversationTitle=..., senderCorpId=..., conversationType=...))
    assert msg.sender == Sender(dingtalk_id="$:LWCP_v1:$abc") and msg.sent_at is None
    assert msg.metadata == {"msgtype": "text"}


@pytest.mark.parametrize("over", [
    {"text": {"content": "   "}},
    {"text": {}},
    {"text": ...},
    {"msgtype": "richText", "text": ..., "content": {"richText": []}},
    {"msgtype": "richText", "text": ..., "content": {"richText": [{"type": "unknown"}]}},
])
def test_empty_messages_are_ignored(over):
    assert parse_dingtalk(callback(**over)) == Ignored("dingtalk-empty-message")


@pytest.mark.parametrize(("over", "field"), [
    ({"msgId": ...}, "msgId"),
    ({"msgId": ""}, "msgId"),
    ({"msgId": 5}, "msgId"),
    ({"msgId": "m" * 257}, "msgId"),
    ({"conversationId": ...}, "conversationId"),
    ({"conversationId": None}, "conversationId"),
    ({"msgtype": ...}, "msgtype"),
    ({"msgtype": "interactiveCard"}, "msgtype"),
    ({"text": "打印机坏了"}, "text"),
    ({"text": {"content": 42}}, "text.content"),
    ({"createAt": "1763861400000"}, "createAt"),
    ({"createAt": -1}, "createAt"),
    ({"createAt": 10**15}, "createAt"),
    ({"conversationType": 2}, "conversationType"),
    ({"conversationType": "3"}, "conversationType"),
    ({"senderNick": ["王五"]}, "senderNick"),
    ({"isAdmin": "false"}, "isAdmin"),
    ({"atUsers": "all"}, "atUsers"),
    ({"msgtype": "richText", "content": {"richText": "看图"}}, "content.richText"),
    ({"msgtype": "richText", "content": {"richText": [{"text": 1}]}}, "content.richText.0.text"),
    ({"msgtype": "file", "content": "报销单.xlsx"}, "content"),
])
def test_bad_callbacks_name_the_field(over, field):
    with pytest.raises(InvalidPayload) as caught:
        parse_dingtalk(callback(**over))
    assert field in {e["field"] for e in caught.value.field_errors}, caught.value.field_errors


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b"null", b'"text"', b"\xff", b"{}" + b" " * (1024 * 1024)])
def test_not_a_callback(body):
    with pytest.raises(InvalidPayload):
        parse_dingtalk(body)


# --- signature ------------------------------------------------------------------------------

SECRET = "SECa1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2"
NOW = 1763861400000


def test_sign_is_base64_hmac_sha256_of_timestamp_newline_secret():
    digest = hmac.new(SECRET.encode(), f"{NOW}\n{SECRET}".encode(), hashlib.sha256).digest()
    assert dingtalk_sign(SECRET, str(NOW)) == base64.b64encode(digest).decode()
    assert dingtalk_sign("密钥", "1") != dingtalk_sign("密钥", "2")  # non-ASCII secrets are UTF-8


@pytest.mark.parametrize(("timestamp", "sign", "now", "ok"), [
    (str(NOW), None, NOW, True),
    (str(NOW), None, NOW + 3_600_000, True),  # exactly an hour old
    (str(NOW), None, NOW - 3_600_000, True),  # an hour ahead (clock skew)
    (str(NOW), None, NOW + 3_600_001, False),  # stale: a replay
    (str(NOW), None, NOW - 3_600_001, False),  # from the future
    (str(NOW), None, NOW + 86_400_000, False),
    (str(NOW), "wrong", NOW, False),
    (str(NOW), "", NOW, False),
    (str(NOW), "签名", NOW, False),  # non-ASCII forgery: False, not TypeError
    (str(NOW + 1), None, NOW, False),  # signed for another timestamp
    ("", None, NOW, False),
    ("abc", None, NOW, False),
    (" 1763861400000", None, NOW, False),
    ("+1763861400000", None, NOW, False),
    ("1_763_861_400_000", None, NOW, False),
    ("１７６３８６１４００００", None, NOW, False),  # full-width digits
    ("9" * 40, None, NOW, False),
])
def test_verify_sign(timestamp, sign, now, ok):
    good = dingtalk_sign(SECRET, str(NOW))
    assert verify_dingtalk_sign(SECRET, timestamp, good if sign is None else sign, now_ms=now) is ok


def test_verify_sign_with_another_secret_or_tolerance():
    good = dingtalk_sign(SECRET, str(NOW))
    assert not verify_dingtalk_sign("SECother", str(NOW), good, now_ms=NOW)
    assert not verify_dingtalk_sign(SECRET, str(NOW), good, now_ms=NOW + 60_001, tolerance_ms=60_000)
    assert verify_dingtalk_sign(SECRET, str(NOW), good, now_ms=NOW + 60_000, tolerance_ms=60_000)


# --- arbitrary input --------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_raise_only_invalid_payload(data):
    try:
        parse_dingtalk(data)
    except InvalidPayload:
        pass


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                           max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({"msgId": st.just("m1"), "conversationId": st.just("c1")}, optional={
    "msgtype": st.sampled_from(["text", "richText", "picture", "audio", "file", "video", "x"]) | json_values,
    "text": json_values, "content": json_values, "createAt": json_values, "senderStaffId": json_values,
    "sessionWebhook": json_values | st.sampled_from(["http://[", "https://h:99999/x", "//"]), "atUsers": json_values, "conversationType": json_values}))
def test_arbitrary_json_shapes_raise_only_invalid_payload(doc):
    try:
        result = parse_dingtalk(json.dumps(doc).encode())
    except InvalidPayload:
        return
    assert isinstance(result, InboundMessage | Ignored)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30), st.text(max_size=60), st.integers(min_value=-(2**63), max_value=2**63))
def test_verify_never_raises(timestamp, sign, now):
    assert verify_dingtalk_sign(SECRET, timestamp, sign, now_ms=now) in (True, False)
