"""The non-e-mail channel parsers as pure functions: formats, signatures, bad input."""

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticket_svc.channels import chat, dingtalk, phone, webform, wechat
from ticket_svc.channels.inbound import Ignored, InboundMessage, InvalidPayload

AES_KEY = base64.b64encode(bytes(range(32))).decode().rstrip("=")  # 43 characters, as WeCom issues them


def wx(msg_type: str, extra: str, sender: str = "oUser1") -> bytes:
    return (f"<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[{sender}]]></FromUserName>"
            f"<CreateTime>1763861400</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>{extra}</xml>").encode()


@pytest.mark.parametrize(("body", "text"), [
    (wx("text", "<Content><![CDATA[我的快递丢了]]></Content><MsgId>1</MsgId>"), "我的快递丢了"),
    (wx("image", "<PicUrl>https://mmbiz/x.jpg</PicUrl><MediaId>m</MediaId><MsgId>2</MsgId>"), "[image]"),
    (wx("voice", "<MediaId>v</MediaId><Recognition>我要退款</Recognition><MsgId>3</MsgId>"), "我要退款"),
    (wx("location", "<Location_X>31.2</Location_X><Location_Y>121.4</Location_Y><Label>上海</Label><MsgId>4</MsgId>"),
     "[location] 上海 (31.2, 121.4)"),
    (wx("link", "<Title>订单</Title><Description>详情</Description><Url>https://x.cn/o</Url><MsgId>5</MsgId>"),
     "订单\n详情\nhttps://x.cn/o"),
])
def test_wechat_message_types(body, text):
    msg = wechat.parse_wechat_xml(body)
    assert isinstance(msg, InboundMessage)
    assert msg.body_text == text and msg.sender.wechat_openid == "oUser1"
    assert msg.conversation_key == "wechat:oUser1" and msg.sent_at.year == 2025


def test_wechat_events_and_wecom_senders():
    assert wechat.parse_wechat_xml(wx("event", "<Event>subscribe</Event>")) == Ignored("wechat-event:subscribe")
    msg = wechat.parse_wechat_xml(wx("text", "<Content>VPN</Content><MsgId>9</MsgId><AgentID>1000002</AgentID>",
                                     sender="zhangsan"), channel="wecom")
    assert msg.sender.external_id == "wecom:zhangsan" and msg.metadata["agent_id"] == "1000002"


@pytest.mark.parametrize("body", [
    b"<!DOCTYPE x [<!ENTITY a 'b'>]><xml><Content>&a;</Content></xml>",
    b"<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>]><xml/>",
    b"not xml", b"<html></html>", wx("text", "<Content>x</Content>", sender=""), wx("bogus", "<MsgId>1</MsgId>"),
])
def test_wechat_bad_payloads(body):
    with pytest.raises(InvalidPayload):
        wechat.parse_wechat_xml(body)


def test_wechat_signatures_and_wecom_encryption_round_trip():
    sig = wechat.wechat_signature("token", "1700000000", "nonce")
    assert wechat.verify_wechat_signature("token", "1700000000", "nonce", sig)
    assert not wechat.verify_wechat_signature("token", "1700000001", "nonce", sig)
    xml = wx("text", "<Content>加密消息</Content><MsgId>77</MsgId>", sender="lisi")
    encrypted = wechat.encrypt_wechat_message(AES_KEY, xml, receiver_id="ww_corp")
    assert wechat.decrypt_wechat_message(AES_KEY, encrypted, expected_receiver_id="ww_corp") == xml
    with pytest.raises(InvalidPayload):
        wechat.decrypt_wechat_message(AES_KEY, encrypted, expected_receiver_id="someone_else")
    with pytest.raises(InvalidPayload):
        wechat.decrypt_wechat_message(AES_KEY, base64.b64encode(b"x" * 32).decode(), expected_receiver_id="ww_corp")
    assert len(wechat.wecom_signature("t", "1", "n", encrypted)) == 40


def ding(**over) -> bytes:
    doc = {"msgtype": "text", "text": {"content": " 打印机坏了 "}, "msgId": "msg-1", "createAt": 1763861400000,
           "conversationType": "2", "conversationId": "cid-9", "senderNick": "王五", "senderStaffId": "s-5",
           "sessionWebhook": "https://oapi.dingtalk.com/robot/sendBySession?session=abc"}
    doc.update(over)
    return json.dumps(doc, ensure_ascii=False).encode()


def test_dingtalk_formats_and_sign():
    msg = dingtalk.parse_dingtalk(ding())
    assert (msg.body_text, msg.external_id, msg.conversation_key) == ("打印机坏了", "msg-1", "dingtalk:cid-9")
    assert msg.sender.dingtalk_id == "s-5" and msg.metadata["session_webhook_host"] == "oapi.dingtalk.com"
    rich = dingtalk.parse_dingtalk(ding(msgtype="richText", content={"richText": [{"text": "看图"}, {"type": "picture"}]}))
    assert rich.body_text == "看图[picture]"
    audio = dingtalk.parse_dingtalk(ding(msgtype="audio", content={"recognition": "帮我查订单"}))
    assert audio.body_text == "帮我查订单"
    assert isinstance(dingtalk.parse_dingtalk(ding(text={"content": "  "})), Ignored)
    sign = dingtalk.dingtalk_sign("secret", "1763861400000")
    assert dingtalk.verify_dingtalk_sign("secret", "1763861400000", sign, now_ms=1763861400000 + 1000)
    assert not dingtalk.verify_dingtalk_sign("secret", "1763861400000", sign, now_ms=1763861400000 + 7_200_000)
    assert not dingtalk.verify_dingtalk_sign("other", "1763861400000", sign, now_ms=1763861400000)
    for bad in (b"[]", b"{", ding(msgId=5), ding(msgtype="unknown"), ding(conversationId="")):
        with pytest.raises(InvalidPayload):
            dingtalk.parse_dingtalk(bad)


def test_chat_message_and_errors():
    body = {"conversation_id": "c1", "message_id": "m1", "text": "你好", "visitor": {"email": "V@X.cn"},
            "attachments": [{"filename": "a.png", "content_type": "image/png",
                             "content_base64": base64.b64encode(b"png").decode()}]}
    msg = chat.parse_chat(json.dumps(body).encode())
    assert msg.conversation_key == "chat:c1" and msg.sender.email == "v@x.cn" and msg.attachments[0].content == b"png"
    for bad in ({**body, "extra": 1}, {**body, "visitor": {"email": "nope"}}, {**body, "text": "", "attachments": []},
                {**body, "attachments": [{"filename": "a", "content_base64": "***"}]}, {"message_id": "x"}):
        with pytest.raises(InvalidPayload) as caught:
            chat.parse_chat(json.dumps(bad).encode())
        assert caught.value.field_errors


def test_phone_records():
    call = {"call_id": "call-1", "direction": "inbound", "from": "+86 138-0013 8000", "to": "400 800 1234",
            "started_at": "2026-11-23T09:30:00+08:00", "duration_s": 95, "status": "missed", "caller_name": "赵六"}
    msg = phone.parse_phone(json.dumps(call).encode())
    assert msg.sender.phone == "+8613800138000" and msg.subject == "Missed call from +8613800138000"
    assert msg.metadata["duration_s"] == 95 and msg.sender.name == "赵六"
    out = phone.parse_phone(json.dumps({**call, "direction": "outbound", "status": "answered",
                                        "summary": "回访客户"}).encode())
    assert out.sender.phone == "4008001234" and out.body_text == "回访客户"
    for bad in ({**call, "recording_url": "http://insecure"}, {**call, "direction": "sideways"},
                {**call, "started_at": "2026-11-23T09:30:00"}, {**call, "from": "abc"}):
        with pytest.raises(InvalidPayload):
            phone.parse_phone(json.dumps(bad).encode())


def test_web_forms_urlencoded_and_multipart():
    msg = webform.parse_webform("subject=%E6%97%A0%E6%B3%95%E6%94%AF%E4%BB%98&email=a%40b.cn&tags=vip,web"
                                "&custom_fields%5Border_no%5D=A-1&priority=high".encode(),
                                "application/x-www-form-urlencoded")
    assert msg.subject == "无法支付" and msg.metadata["tags"] == ["vip", "web"]
    assert msg.metadata["custom_fields"] == {"order_no": "A-1"} and msg.metadata["priority"] == "high"
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"subject\"\r\n\r\n表单\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"phone\"\r\n\r\n+86 138 0000 0000\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"f\"; filename*=UTF-8''%E5%8F%91%E7%A5%A8.pdf\r\n"
            "Content-Type: application/pdf\r\n\r\n").encode() + b"%PDF" + f"\r\n--{boundary}--\r\n".encode()
    parsed = webform.parse_webform(body, f"multipart/form-data; boundary={boundary}")
    assert parsed.attachments[0].filename == "发票.pdf" and parsed.attachments[0].content == b"%PDF"
    with pytest.raises(InvalidPayload) as caught:
        webform.parse_webform(b"email=bad&priority=wild", "application/x-www-form-urlencoded")
    assert {e["field"] for e in caught.value.field_errors} == {"subject", "email", "priority"}
    for bad_type in ("text/plain", "multipart/form-data"):
        with pytest.raises(InvalidPayload):
            webform.parse_webform(b"x", bad_type)


@settings(max_examples=300)
@given(st.binary(max_size=2000))
def test_parsers_raise_only_invalid_payload_on_arbitrary_bytes(data):
    for parse in (chat.parse_chat, phone.parse_phone, dingtalk.parse_dingtalk, wechat.parse_wechat_xml,
                  lambda b: webform.parse_webform(b, "multipart/form-data; boundary=x"),
                  lambda b: webform.parse_webform(b, "application/x-www-form-urlencoded")):
        try:
            parse(data)
        except InvalidPayload:
            pass
