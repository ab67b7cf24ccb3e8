"""The e-mail parser's building blocks, one rule at a time (pure)."""

from __future__ import annotations

import base64

import pytest

from ticket_svc.channels.email import parse_email
from ticket_svc.channels.email.classify import classify
from ticket_svc.channels.email.decode import decode_bytes, decode_header, message_ids, parse_mime_header, parse_sender
from ticket_svc.channels.email.html_text import html_to_text
from ticket_svc.channels.email.language import guess_language
from ticket_svc.channels.email.quotes import is_forward, strip_quoted
from ticket_svc.channels.inbound import Ignored, InboundMessage, InvalidPayload


def mail(*headers: str, body: bytes = b"Hello\r\n") -> bytes:
    return "".join(f"{h}\r\n" for h in headers).encode("utf-8", "surrogateescape") + b"\r\n" + body


# --- charsets ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "charset", "text"), [
    ("朱镕基".encode("gbk"), "gb2312", "朱镕基"),                 # GBK-only character under a gb2312 label
    ("𠀀".encode("gb18030"), "GB2312", "𠀀"),                     # even GB18030 four-byte sequences
    ("㗎".encode("big5hkscs"), "big5", "㗎"),                     # HKSCS under a big5 label
    (b"450 \x80", "iso-8859-1", "450 \u20ac"),                   # latin-1 label, windows-1252 euro sign
    ("打印机".encode("gbk"), "utf-8", "打印机"),                  # utf-8 label on GBK bytes
    ("打印机".encode("gbk"), None, "打印机"),                     # no label at all
    ("café".encode("utf-8"), "x-unknown-charset", "café"),
    (b"It\x92s fine", None, "It\u2019s fine"),                   # not mistaken for Chinese
    ("打印机".encode("utf-8"), "us-ascii", "打印机"),
])
def test_decode_bytes(data: bytes, charset: str | None, text: str):
    assert decode_bytes(data, charset) == text


def test_decode_bytes_never_raises_and_replaces_only_what_it_must():
    assert decode_bytes(b"\xff\xfe\xfd ok", "gb2312").endswith(" ok")
    assert decode_bytes(b"\x81", "big5") == "\ufffd"


def test_encoded_words():
    whole = "系统升级后无法导出报表".encode()
    split = f"=?UTF-8?B?{base64.b64encode(whole[:7]).decode()}?=\r\n =?UTF-8?B?{base64.b64encode(whole[7:]).decode()}?="
    assert decode_header(split) == "系统升级后无法导出报表"
    assert decode_header("=?ISO-8859-1?Q?Facture_erron=E9e?= [#12]") == "Facture erronée [#12]"
    gb, big5 = (base64.b64encode("测试".encode("gb2312")).decode(), base64.b64encode("測試".encode("big5")).decode())
    assert decode_header(f"Re: =?gb2312?B?{gb}?= =?big5?B?{big5}?= ok") == "Re: 测试測試 ok"
    assert decode_header("=?utf-8*zh?Q?=E4=BD=A0=E5=A5=BD?=") == "你好"
    raw_gbk = "回复：发票".encode("gbk").decode("ascii", "surrogateescape")  # 8-bit header as the parser keeps it
    assert decode_header(raw_gbk) == "回复：发票"
    assert decode_header("=?bogus?B?!!!?=") == ""
    assert decode_header("a\tb\r\n c") == "a\tb c"


def test_mime_parameters():
    assert parse_mime_header("attachment; filename*=gbk''%B1%A8%BC%DB.pdf") == ("attachment", {"filename": "报价.pdf"})
    assert parse_mime_header('Text/Plain; charset="gb2312"; name="a;b.txt"') == (
        "text/plain", {"charset": "gb2312", "name": "a;b.txt"})
    _, params = parse_mime_header('attachment; filename*0="long "; filename*1="name.pdf"')
    assert params["filename"] == "long name.pdf"
    _, params = parse_mime_header('attachment; filename="=?UTF-8?B?5oql5Lu3LnBkZg==?="')
    assert params["filename"] == "报价.pdf"
    _, params = parse_mime_header('inline; filename="say \\"hi\\".txt"')
    assert params["filename"] == 'say "hi".txt'


def test_addresses_and_ids():
    assert parse_sender('=?utf-8?B?5byg5LiJ?= <ZhangSan@Example.COM>') == ("张三", "zhangsan@example.com")
    assert parse_sender('"Li, Wei" <wei.li@x.example>') == ("Li, Wei", "wei.li@x.example")
    assert parse_sender("Undisclosed") == ("Undisclosed", None)
    assert parse_sender(None) == (None, None)
    assert message_ids("<a@x> <b@y>\r\n\t<c@z>") == ["a@x", "b@y", "c@z"]
    assert message_ids("a@x b@y") == ["a@x", "b@y"]
    assert message_ids("") == []


# --- classification -------------------------------------------------------------------------------

def reason(headers: dict[str, str], *, subject: str = "Help", sender: str | None = "a@b.example",
           types: tuple[str, ...] = ("text/plain",)) -> str | None:
    return classify({k.lower(): [v] for k, v in headers.items()}, subject=subject, sender_email=sender,
                    content_types=types)


def test_classification_rules():
    assert reason({}) is None
    assert reason({"Auto-Submitted": "no"}) is None
    assert reason({"Auto-Submitted": "auto-generated"}) == "auto-submitted"
    assert reason({"Auto-Submitted": "auto-replied"}, sender="mailer-daemon@mx.example") == "bounce"
    assert reason({"Return-Path": "<>", "Auto-Submitted": "auto-replied"}) == "bounce"
    assert reason({}, types=("multipart/report", "text/plain", "message/delivery-status")) == "bounce"
    assert reason({}, sender="postmaster@mx.example") == "bounce"
    assert reason({"X-Auto-Response-Suppress": "DR, OOF"}) == "auto-reply"
    assert reason({"X-Auto-Response-Suppress": "DR, RN, NRN"}) is None
    assert reason({"X-Autoreply": "yes"}) == "auto-reply"
    assert reason({"X-Autorespond": "Thanks"}) == "auto-reply"
    assert reason({"X-Autogenerated": "Reply"}) == "auto-reply"
    assert reason({"Precedence": "junk"}) == "bulk"
    assert reason({"Precedence": "auto_reply"}) == "bulk"
    assert reason({"Precedence": "list", "List-Id": "<x.example>"}) == "mailing-list"
    assert reason({"List-Unsubscribe": "<mailto:u@x.example>"}) == "mailing-list"


@pytest.mark.parametrize(("subject", "ignored"), [
    ("Automatic reply: Your ticket", True),
    ("Auto Reply: hi", True),
    ("Out of Office: Re: [#1] x", True),
    ("Out of Office", True),
    ("自动回复：我在休假", True),
    ("自動回覆: 休假中", True),
    ("Out of office hours support needed", False),
    ("Re: Automatic reply: yours", False),
    ("关于自动回复的问题", False),
])
def test_auto_reply_subjects(subject: str, ignored: bool):
    assert (reason({}, subject=subject) == "auto-reply") is ignored


# --- quoted history -------------------------------------------------------------------------------

def test_outlook_header_block_after_underscores():
    text = "Fixed, thanks.\n\n________________________________\nFrom: Support\nSent: Monday\nTo: me\nSubject: x\n\nold"
    assert strip_quoted(text) == "Fixed, thanks."


def test_new_outlook_date_header_block_and_bold_labels():
    text = "OK.\n\n*From:* Support <s@x>\n*Date:* Monday, 5 January 2026 10:00\n*To:* me\n*Subject:* x\n\nold"
    assert strip_quoted(text) == "OK."


def test_wrote_in_the_customers_own_words_is_no_attribution():
    text = "On Monday my manager wrote:\nplease fix the VPN.\nIt is still broken."
    assert strip_quoted(text) == text
    assert strip_quoted("Fine.\n\nOn Mon, 5 Jan 2026,\nBob <b@x> wrote:\n\n> old") == "Fine."


def test_a_lone_from_line_is_not_a_header_block():
    text = "From: the third floor printer again.\nIt jams."
    assert strip_quoted(text) == text


def test_a_message_that_is_only_quote_keeps_its_text():
    text = "> everything quoted\n> nothing new"
    assert strip_quoted(text) == text


def test_forward_detection():
    assert is_forward("Fwd: x", "")
    assert is_forward("转发：合同", "")
    assert is_forward("FW: x", "")
    assert is_forward(None, "Look:\n---------- Forwarded message ---------\nFrom: a")
    assert is_forward(None, "Look:\nBegin forwarded message:\n\nFrom: a")
    assert not is_forward("Re: x", "ok\n\nOn Mon, Bob wrote:\n> ---------- Forwarded message ---------")
    assert not is_forward("Re: Fwd: x", "ok")


# --- HTML -----------------------------------------------------------------------------------------

def test_html_to_text():
    assert html_to_text("<p>a &amp; b</p><p>c<br>d</p>") == "a & b\n\nc\nd"
    assert html_to_text("<style>x{}</style><script>alert(1)</script><div>ok</div>") == "ok"
    assert html_to_text('<p class="MsoNormal">one</p><p class="MsoNormal">two</p>') == "one\ntwo"
    assert html_to_text("<div>a</div><div>&nbsp;</div><div>b</div>") == "a\n\nb"
    assert html_to_text("<html><head><title>t</title><body>no closing head") == "no closing head"
    assert html_to_text("x<blockquote>q</blockquote>y") == "x\n\n> q\n\ny"
    assert html_to_text("<table><tr><td>a</td><td>b</td></tr></table>") == "a  b"
    assert html_to_text("") == ""


# --- language -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "language"), [
    ("我的打印机坏了", "zh"),
    ("VIP客户 complains: 打印机 offline since Monday", "zh"),
    ("The printer on the third floor is offline again since Monday morning", "en"),
    ("Thanks for the quick fix, the printer works again. 张三", "en"),
    ("プリンターが動きません", None),
    ("12345 !!!", None),
])
def test_language(text: str, language: str | None):
    assert guess_language(text) == language


# --- the entry point ------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    b"", b"\r\n\r\n  ", b"\x00\x01\x02\xff" * 50, b'{"subject": "help"}', b"<html><body>hi</body></html>",
    b"hello world\n", b"Note: call me back\n\nThanks",
])
def test_not_an_email(raw: bytes):
    with pytest.raises(InvalidPayload):
        parse_email(raw)


def test_lenient_with_leading_blank_lines_and_no_from():
    result = parse_email(b"\r\n\r\nSubject: hi\r\n\r\nbody")
    assert isinstance(result, InboundMessage)
    assert result.sender.email is None and result.subject == "hi" and result.body_text == "body"


@pytest.mark.parametrize(("subject", "hint"), [
    ("[#1234] x", 1234), ("Re: [Ticket #42] y", 42), ("回复：［#5678］z", 5678), ("【工单 #77】", 77),
    ("RE: [ #9 ]", 9), ("Order #1234", None), ("[1234]", None), ("[#] x", None),
])
def test_ticket_number_hint(subject: str, hint: int | None):
    result = parse_email(mail("From: a@b.example", f"Subject: {subject}"))
    assert isinstance(result, InboundMessage)
    assert result.ticket_number_hint == hint


def test_thread_refs_order_and_dedupe():
    result = parse_email(mail("From: a@b.example", "Message-ID: <self@b>", "In-Reply-To: <c@x>",
                              "References: <a@x> <b@x>\r\n <c@x> <self@b>"))
    assert isinstance(result, InboundMessage)
    assert result.external_id == "self@b"
    assert result.thread_refs == ("c@x", "b@x", "a@x")


def test_a_forwarded_bounce_inline_is_a_request():
    raw = mail("From: kim@example.org", "Subject: Fwd: Undeliverable: order", body=b"See below\r\n")
    assert isinstance(parse_email(raw), InboundMessage)


def test_bounce_with_report_part_nested_in_mixed():
    raw = mail("From: ops@relay.example", "Subject: failed", 'Content-Type: multipart/mixed; boundary="x"',
               body=b"--x\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--x\r\nContent-Type: message/delivery-status"
                    b"\r\n\r\nAction: failed\r\n--x--\r\n")
    assert parse_email(raw) == Ignored("bounce")


def test_text_calendar_and_nameless_parts_get_names():
    raw = mail("From: a@b.example", "Subject: invite", 'Content-Type: multipart/mixed; boundary="x"',
               body=b"--x\r\nContent-Type: text/plain\r\n\r\nsee invite\r\n--x\r\nContent-Type: text/calendar; "
                    b"method=REQUEST\r\n\r\nBEGIN:VCALENDAR\r\n--x\r\nContent-Type: application/octet-stream\r\n"
                    b"Content-Disposition: attachment\r\n\r\nxx\r\n--x--\r\n")
    result = parse_email(raw)
    assert isinstance(result, InboundMessage)
    assert [a.filename for a in result.attachments] == ["attachment-1.ics", "attachment-2.bin"]
    assert result.body_text == "see invite"


def test_date_without_zone_is_utc():
    result = parse_email(mail("From: a@b.example", "Date: 13 Jan 2026 09:00:00 -0000"))
    assert isinstance(result, InboundMessage)
    assert result.sent_at is not None and result.sent_at.utcoffset() is not None
    assert result.sent_at.utcoffset().total_seconds() == 0
