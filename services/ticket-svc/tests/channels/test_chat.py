"""Chat-widget JSON -> InboundMessage: conversation threading key, dedupe key, visitor identity,
attachments, and a field error for every kind of bad input."""

import base64
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticket_svc.channels.chat import parse_chat
from ticket_svc.channels.inbound import InboundAttachment, InboundMessage, InvalidPayload

PNG = b"\x89PNG\r\n\x1a\n fake"


def message(**over) -> dict:
    doc = {"conversation_id": "c-20261123-0042", "message_id": "m-7",
           "visitor": {"name": "访客 7", "email": "Visitor7@Example.com", "phone": None, "external_id": "cookie-81f2"},
           "text": "你好，我想咨询退货", "sent_at": "2026-11-23T09:30:00+08:00"}
    doc.update(over)
    return {k: v for k, v in doc.items() if v is not ...}


def parse(doc: dict) -> InboundMessage:
    return parse_chat(json.dumps(doc, ensure_ascii=False).encode())


def test_a_full_message():
    msg = parse(message(language="zh-CN", page_url="https://shop.example.com/orders/A-1001",
                        attachments=[{"filename": "photo.png", "content_type": "image/png",
                                      "content_base64": base64.b64encode(PNG).decode()}]))
    assert msg.channel == "chat"
    assert msg.external_id == "c-20261123-0042:m-7"
    assert msg.conversation_key == "chat:c-20261123-0042"
    assert msg.body_text == "你好，我想咨询退货"
    assert msg.sender.name == "访客 7" and msg.sender.email == "visitor7@example.com"
    assert msg.sender.external_id == "chat:cookie-81f2" and msg.sender.phone is None
    assert msg.attachments == (InboundAttachment(filename="photo.png", content_type="image/png", content=PNG),)
    assert msg.language == "zh-CN" and msg.sent_at == datetime(2026, 11, 23, 1, 30, tzinfo=UTC)
    assert msg.metadata == {"message_id": "m-7", "page_url": "https://shop.example.com/orders/A-1001"}
    assert msg.subject is None  # intake makes one from the first line


@pytest.mark.parametrize(("over", "check"), [
    # English, anonymous visitor: nothing but the conversation identifies them
    ({"visitor": {}, "text": "  Hi, where is my order?  "},
     lambda m: m.body_text == "Hi, where is my order?" and m.sender.identities() == {}),
    # phone numbers are normalised like the phone channel's
    ({"visitor": {"name": "Li Lei", "phone": "+86 138-0013 8000"}},
     lambda m: m.sender.phone == "+8613800138000" and m.sender.email is None),
    # an attachment alone is a message
    ({"text": "", "attachments": [{"filename": "发票.pdf", "content_type": "application/pdf",
                                   "content_base64": base64.b64encode(b"%PDF-1.7").decode()}]},
     lambda m: m.body_text == "[attachment]" and m.attachments[0].filename == "发票.pdf"),
    # a path sent as file name keeps its last component; content type defaults and is lower-cased
    ({"attachments": [{"filename": "C:\\Users\\li\\截图.PNG", "content_base64": ""}]},
     lambda m: m.attachments[0].filename == "截图.PNG" and m.attachments[0].content_type == "application/octet-stream"),
    ({"attachments": [{"filename": "a.png", "content_type": "Image/PNG", "content_base64": "AA=="}]},
     lambda m: m.attachments[0].content_type == "image/png" and m.attachments[0].content == b"\x00"),
    # sent_at is optional; Z and fractions are RFC 3339
    ({"sent_at": ...}, lambda m: m.sent_at is None),
    ({"sent_at": "2026-11-23T01:30:00.123Z"}, lambda m: m.sent_at.microsecond == 123000),
    # the same message id in another conversation is another message
    ({"conversation_id": "c-other"}, lambda m: m.external_id == "c-other:m-7" and m.conversation_key == "chat:c-other"),
])
def test_message_variants(over, check):
    assert check(parse(message(**over)))


@pytest.mark.parametrize(("over", "field"), [
    ({"conversation_id": ...}, "conversation_id"),
    ({"message_id": ...}, "message_id"),
    ({"message_id": ""}, "message_id"),
    ({"message_id": 7}, "message_id"),
    ({"message_id": "m 7"}, "message_id"),
    ({"conversation_id": "c" * 129}, "conversation_id"),
    ({"visitor": ...}, "visitor"),
    ({"visitor": "访客"}, "visitor"),
    ({"visitor": {"email": "not-an-address"}}, "visitor.email"),
    ({"visitor": {"phone": "call me"}}, "visitor.phone"),
    ({"visitor": {"nickname": "x"}}, "visitor.nickname"),
    ({"text": ...}, "text"),
    ({"text": ["hi"]}, "text"),
    ({"text": "x" * 65_537}, "text"),
    ({"text": "   "}, "text"),
    ({"text": "a\u0000b"}, "body"),
    ({"sent_at": "2026-11-23 09:30"}, "sent_at"),
    ({"sent_at": "2026-11-23T09:30:00"}, "sent_at"),
    ({"sent_at": 1763861400}, "sent_at"),
    ({"sent_at": "yesterday"}, "sent_at"),
    ({"language": "Chinese (Simplified)"}, "language"),
    ({"page_url": "javascript:alert(1)"}, "page_url"),
    ({"attachments": [{"filename": "a.png", "content_base64": "***"}]}, "attachments.0.content_base64"),
    ({"attachments": [{"content_base64": "AA=="}]}, "attachments.0.filename"),
    ({"attachments": [{"filename": "a", "content_base64": "AA==", "size": 1}]}, "attachments.0.size"),
    ({"attachments": [{"filename": "a", "content_base64": "AA=="}] * 11}, "attachments"),
    ({"attachments": {"filename": "a"}}, "attachments"),
    ({"customer_tier": "gold"}, "customer_tier"),
])
def test_bad_messages_name_the_field(over, field):
    with pytest.raises(InvalidPayload) as caught:
        parse(message(**over))
    assert field in {e["field"] for e in caught.value.field_errors}, caught.value.field_errors


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b"42", b'"text"', b"\xef\xbb\xbf{}", b"{}" + b" " * (50 * 1024 * 1024)])
def test_not_a_message(body):
    with pytest.raises(InvalidPayload):
        parse_chat(body)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_raise_only_invalid_payload(data):
    try:
        parse_chat(data)
    except InvalidPayload:
        pass


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                           max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({}, optional={
    "conversation_id": json_values, "message_id": json_values, "visitor": json_values, "text": json_values,
    "sent_at": json_values, "attachments": json_values, "language": json_values, "page_url": json_values}))
def test_arbitrary_json_shapes_raise_only_invalid_payload(doc):
    try:
        parse_chat(json.dumps(doc).encode())
    except InvalidPayload:
        pass
