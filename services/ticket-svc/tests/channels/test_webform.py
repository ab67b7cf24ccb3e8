"""Web forms (urlencoded and multipart) -> InboundMessage: fields, tags, custom fields, files,
field errors reported all at once, and broken bodies."""

from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticket_svc.channels.inbound import InboundMessage, InvalidPayload
from ticket_svc.channels.webform import MAX_FILES, parse_webform

FORM = "application/x-www-form-urlencoded"
BOUNDARY = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def urlencoded(*pairs: tuple[str, str]) -> bytes:
    return urlencode(list(pairs)).encode()


def field(name: str, value: str) -> bytes:
    return f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()


def file(name: str, disposition_filename: str, content: bytes, content_type: str | None = "image/png") -> bytes:
    head = f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; {disposition_filename}\r\n"
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    return head.encode() + b"\r\n" + content + b"\r\n"


def multipart(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def test_urlencoded_form_in_chinese():
    msg = parse_webform(urlencoded(
        ("subject", "网站表单：无法支付"), ("description", "支付页面一直转圈，订单号 A-1001"), ("name", "支付用户"),
        ("email", "payer@example.com"), ("phone", "+86 138 0013 8000"), ("priority", "HIGH"), ("type", "incident"),
        ("tags", "支付, web ,vip"), ("tags", "vip"), ("custom_fields[order_no]", "A-1001"),
        ("custom_fields[amount_cny]", "199.00"), ("language", "zh-CN"), ("form_submission_id", "f-7781"),
        ("csrf_token", "ignored"), ("submit", "提交")), FORM + "; charset=UTF-8")
    assert isinstance(msg, InboundMessage)
    assert (msg.channel, msg.external_id, msg.conversation_key) == ("web", "f-7781", None)
    assert msg.subject == "网站表单：无法支付" and msg.body_text == "支付页面一直转圈，订单号 A-1001"
    assert (msg.sender.name, msg.sender.email, msg.sender.phone) == ("支付用户", "payer@example.com", "+8613800138000")
    assert msg.language == "zh-CN" and msg.attachments == ()
    assert msg.metadata == {"priority": "high", "type": "incident", "tags": ["支付", "web", "vip"],
                            "custom_fields": {"order_no": "A-1001", "amount_cny": "199.00"}}


@pytest.mark.parametrize(("body", "check"), [
    # English, minimal: body instead of description, no submission id, default priority
    (urlencoded(("subject", "Cannot log in"), ("body", "Password reset mail never arrives."), ("email", "bob@example.org")),
     lambda m: (m.body_text, m.external_id, m.metadata["priority"], m.metadata["tags"])
     == ("Password reset mail never arrives.", None, "normal", [])),
    # a phone number alone is enough to reach the customer
    (urlencoded(("subject", "请回电"), ("phone", "0086 139 1111 2222")),
     lambda m: m.sender.phone == "+8613911112222" and m.sender.email is None and m.body_text == ""),
    # repeated scalar fields: the first one counts; tags[] works like tags
    (urlencoded(("subject", "first"), ("subject", "second"), ("email", "a@b.cn"), ("tags[]", "x"), ("tags[]", "y")),
     lambda m: m.subject == "first" and m.metadata["tags"] == ["x", "y"]),
    # '+' is a space, %-escapes are UTF-8; raw UTF-8 from scripts is accepted too
    (b"subject=hello+world&email=a%40b.cn&description=%E4%BD%A0%E5%A5%BD", lambda m: (m.subject, m.body_text) == ("hello world", "你好")),
    ("subject=退款&email=a@b.cn".encode(), lambda m: m.subject == "退款"),
    # surrounding whitespace is trimmed; blank optional fields are absent
    (urlencoded(("subject", "  Spaces  "), ("email", "a@b.cn"), ("name", "  "), ("type", "")),
     lambda m: m.subject == "Spaces" and m.sender.name is None and "type" not in m.metadata),
])
def test_urlencoded_variants(body, check):
    assert check(parse_webform(body, FORM))


def test_multipart_with_files():
    body = multipart(
        field("subject", "Printer on 3F is jammed"), field("description", "It shows error E-42.\r\nSee photos."),
        field("email", "li.lei@example.com"), field("tags", "hardware,3F"),
        file("files", 'filename="jam.png"', b"\x89PNG one"),
        file("files", 'filename="截图 2026-11-23.png"', b"\x89PNG two"),  # browsers send raw UTF-8
        file("invoice", "filename=\"=?utf-8?B?5Y+R56Wo?=\"; filename*=UTF-8''%E5%8F%91%E7%A5%A8.pdf", b"%PDF-1.7",
             "application/pdf"),  # .NET style: the RFC 5987 name wins
        file("log", 'filename="C:\\Users\\li\\Desktop\\printer.log"', b"E-42", None),  # an old browser's full path
        file("empty", 'filename=""', b"", "application/octet-stream"),  # a file input left empty
    )
    msg = parse_webform(body, MULTIPART)
    assert msg.subject == "Printer on 3F is jammed" and msg.body_text == "It shows error E-42.\r\nSee photos."
    assert [(a.filename, a.content_type, a.content) for a in msg.attachments] == [
        ("jam.png", "image/png", b"\x89PNG one"), ("截图 2026-11-23.png", "image/png", b"\x89PNG two"),
        ("发票.pdf", "application/pdf", b"%PDF-1.7"), ("printer.log", "application/octet-stream", b"E-42")]
    assert msg.metadata["tags"] == ["hardware", "3F"]


def test_multipart_keeps_binary_files_intact():
    payload = bytes(range(256)) * 40 + f"\r\n--{BOUNDARY}x".encode()  # looks like, but is not, a boundary
    msg = parse_webform(multipart(field("subject", "dump"), field("email", "a@b.cn"),
                                  file("f", 'filename="core.bin"', payload, "application/octet-stream")), MULTIPART)
    assert msg.attachments[0].content == payload


@pytest.mark.parametrize(("body", "fields"), [
    (urlencoded(("email", "payer@example.com")), {"subject"}),
    (urlencoded(("subject", "x")), {"email"}),  # neither e-mail nor phone
    (urlencoded(("subject", "x"), ("email", "not-an-address")), {"email"}),
    (urlencoded(("subject", "x"), ("phone", "call me maybe")), {"phone"}),
    (urlencoded(("subject", "x" * 501), ("email", "a@b.cn")), {"subject"}),
    (urlencoded(("subject", "x"), ("email", "a@b.cn"), ("priority", "asap")), {"priority"}),
    (urlencoded(("subject", "x"), ("email", "a@b.cn"), ("type", "t" * 65)), {"type"}),
    (urlencoded(("subject", "x"), ("email", "a@b.cn"), ("language", "简体中文")), {"language"}),
    (urlencoded(("subject", "x"), ("email", "a@b.cn"), ("tags", "t" * 65)), {"tags"}),
    (urlencoded(("subject", "x"), ("email", "a@b.cn"), *[("tags", f"t{i}") for i in range(51)]), {"tags"}),
    (urlencoded(("subject", "x"), ("email", "a@b.cn"), ("custom_fields[Order No]", "1")), {"custom_fields[Order No]"}),
    (urlencoded(("subject", "x"), ("email", "a@b.cn"), ("custom_fields[]", "1")), {"custom_fields[]"}),
    (urlencoded(("subject", "x"), ("email", "a@b.cn"), ("description", "a\x00b")), {"description"}),
    (urlencoded(("subject", "x"), ("email", "a@b.cn"), ("description", "x" * 65_537)), {"description"}),
    (urlencoded(("subject", "x"), ("email", "a@b.cn"), ("form_submission_id", "f" * 129)), {"form_submission_id"}),
    # everything wrong at once is reported at once
    (urlencoded(("email", "bad"), ("priority", "wild"), ("phone", "?")), {"subject", "email", "priority", "phone"}),
    (multipart(field("subject", "x"), field("email", "a@b.cn"),
               *[file("files", f'filename="{i}.png"', b"png") for i in range(MAX_FILES + 1)]), {"files"}),
])
def test_field_errors(body, fields):
    content_type = MULTIPART if body.startswith(b"--") else FORM
    with pytest.raises(InvalidPayload) as caught:
        parse_webform(body, content_type)
    assert {e["field"] for e in caught.value.field_errors} == fields, caught.value.field_errors
    assert all(e["message"] for e in caught.value.field_errors)


def test_non_utf8_multipart_field_is_a_field_error():
    body = multipart(field("subject", "x"), field("email", "a@b.cn")).replace(b"\r\nx\r\n", "\r\n退款\r\n".encode("gbk"))
    with pytest.raises(InvalidPayload) as caught:
        parse_webform(body, MULTIPART)
    assert caught.value.field_errors == [{"field": "subject", "message": "is not UTF-8 text"}]


@pytest.mark.parametrize(("body", "content_type"), [
    (b"subject=x", "text/plain"),
    (b"subject=x", "application/json"),
    (b"subject=x", ""),
    (b"--x\r\n", "multipart/form-data"),  # no boundary
    (b"subject=%FF&email=a%40b.cn", FORM),  # %-escape that is not UTF-8
    ("subject=x".encode("utf-16"), FORM),
    ("&".join(f"f{i}=1" for i in range(201)).encode(), FORM),
    (b"no boundary here at all", MULTIPART),
    (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"subject\"\r\n\r\nunterminated".encode(), MULTIPART),
    (multipart(*[field(f"f{i}", "1") for i in range(220)]), MULTIPART),
    (b"x" * (50 * 1024 * 1024 + 1), FORM),
    (b"subject=x", "multipart/form-data; boundary=\u7edf"),
])
def test_unreadable_bodies(body, content_type):
    with pytest.raises(InvalidPayload):
        parse_webform(body, content_type)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000), st.sampled_from([FORM, MULTIPART, "multipart/form-data; boundary=x", "text/plain"]))
def test_arbitrary_bytes_raise_only_invalid_payload(data, content_type):
    try:
        parse_webform(data, content_type)
    except InvalidPayload:
        pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["subject", "email", "phone", "priority", "tags", "custom_fields[k]",
                                           "custom_fields[K]", "language", "type", "name", "x"]),
                          st.text(max_size=40)), max_size=12))
def test_arbitrary_fields_raise_only_invalid_payload(pairs):
    for body, content_type in ((urlencoded(*pairs), FORM),
                               (multipart(*[field(k, v) for k, v in pairs if "\r" not in v and "\n" not in v]), MULTIPART)):
        try:
            parse_webform(body, content_type)
        except InvalidPayload:
            pass
