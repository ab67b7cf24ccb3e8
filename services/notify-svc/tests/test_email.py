"""The e-mail adapter: message building (headers, encodings, threading) as tables, and sending
to a real aiosmtpd server on 127.0.0.1 (accepting, refusing, temporarily failing, down)."""

from __future__ import annotations

import asyncio
import email
import email.errors
import email.policy
import email.utils
import re
import socket
import uuid
from collections.abc import Iterator
from email.header import decode_header, make_header

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from helpdesk_common.devstack import free_port
from notify_svc.channels.base import Attachment, OutboundMessage
from notify_svc.channels.email import (WIRE_POLICY, EmailAdapter, SmtpConfigError, _one_line, build_message,
                                       choose_from, compose, parse_smtp_url, reply_subject)

pytestmark = pytest.mark.timeout(60)

DELIVERY_ID = uuid.UUID("6f1c4a52-3d1b-4c57-9a8e-0b4a1c2d3e4f")


def reply(**overrides) -> OutboundMessage:
    values = dict(
        delivery_id=DELIVERY_ID, channel="email", route={"to": ["Li Lei <li@example.com>"], "from": "support@acme.test"},
        body_text="Hello,\n\nwe fixed it.", subject="Printer broken", email_message_id="<reply-1@acme.test>",
        in_reply_to="<customer-1@example.com>", references=["<customer-0@example.com>", "<customer-1@example.com>"],
        extra={"number": 42},
    )
    values.update(overrides)
    return OutboundMessage(**values)


def parsed(message: OutboundMessage, **kwargs) -> email.message.EmailMessage:
    raw = build_message(message, from_address=kwargs.pop("from_address", "support@acme.test"), **kwargs).as_bytes()
    raw.decode("ascii")  # 7-bit on the wire: no SMTPUTF8 needed
    return email.message_from_bytes(raw, policy=email.policy.default)


@pytest.mark.parametrize(("subject", "number", "automatic", "expected"), [
    ("Printer broken", 42, False, "Re: Printer broken [#42]"),
    ("Re: Printer broken", 42, False, "Re: Printer broken [#42]"),
    ("RE: re: Printer broken [#42]", 42, False, "Re: Printer broken [#42]"),
    ("AW: Drucker", 7, False, "Re: Drucker [#7]"),
    ("回复：打印机坏了", 8, False, "Re: 打印机坏了 [#8]"),
    ("打印机坏了", None, False, "Re: 打印机坏了"),
    ("", 9, False, "Re: Your request [#9]"),
    ("line\r\nBcc: evil@example.com", 1, False, "Re: line Bcc: evil@example.com [#1]"),
    ("We received your request", 5, True, "We received your request [#5]"),
    ("[#5] 我们已收到您的请求：打印机", 5, True, "[#5] 我们已收到您的请求：打印机"),
    ("Re: solved", 5, True, "Re: solved [#5]"),  # a template's words are its own
])
def test_reply_subject(subject, number, automatic, expected) -> None:
    assert reply_subject(subject, number, automatic=automatic) == expected


@pytest.mark.parametrize(("route_from", "expected"), [
    ("support@acme.test", "support@acme.test"),
    ("Sales <SALES@acme.test>", "SALES@acme.test"),
    (["billing@acme.test"], "billing@acme.test"),
    ("ceo@elsewhere.test", "support@acme.test"),  # not ours: never send as an address the event names
    (None, "support@acme.test"),
    (123, "support@acme.test"),
])
def test_from_is_one_of_ours(route_from, expected) -> None:
    assert choose_from(route_from, support_address="support@acme.test",
                       support_addresses=["sales@acme.test", "billing@acme.test"]) == expected


def test_threading_headers_and_parts() -> None:
    msg = parsed(reply())
    assert msg["Message-ID"] == "<reply-1@acme.test>"
    assert msg["In-Reply-To"] == "<customer-1@example.com>"
    assert msg["References"].split() == ["<customer-0@example.com>", "<customer-1@example.com>"]
    assert msg["Subject"] == "Re: Printer broken [#42]"
    assert msg["To"] == "Li Lei <li@example.com>"
    assert msg["From"] == "support@acme.test"
    assert msg["Auto-Submitted"] is None  # a reply is written by a person
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n").strip() == "Hello,\n\nwe fixed it."
    assert "<p>we fixed it.</p>" in msg.get_body(("html",)).get_content()


def test_in_reply_to_is_added_to_references_and_ids_get_brackets() -> None:
    msg = parsed(reply(email_message_id="abc@acme.test", in_reply_to="c2@example.com", references=["c1@example.com"]))
    assert msg["Message-ID"] == "<abc@acme.test>"
    assert msg["References"].split() == ["<c1@example.com>", "<c2@example.com>"]


def test_without_our_message_id_the_delivery_id_is_stable() -> None:
    first = parsed(reply(email_message_id=None))
    again = parsed(reply(email_message_id=None))
    assert first["Message-ID"] == again["Message-ID"] == f"<{DELIVERY_ID}@acme.test>"


def test_chinese_subject_names_body_and_attachment_are_encoded() -> None:
    message = reply(
        subject="关于订单 #123 的问题", route={"to": ["李雷 <li@example.com>"], "cc": "韩梅梅 <han@example.com>"},
        body_text="您好，问题已经解决。\n\n客服团队", body_html="<p>您好，问题已经<b>解决</b>。</p>",
        attachments=[Attachment(filename="发票.pdf", content_type="application/pdf", content=b"%PDF-1.4 x")],
        language="zh-CN",
    )
    built = build_message(message, from_address="support@acme.test", from_name="客服中心")
    raw = built.as_bytes()
    assert "关于".encode() not in raw  # encoded words, not raw UTF-8 in headers
    assert b"=?utf-8?" in raw.lower()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Subject"] == "Re: 关于订单 #123 的问题 [#42]"
    assert str(make_header(decode_header(raw.split(b"\nSubject: ")[1].split(b"\n")[0].decode()))).startswith("Re: 关于")
    assert msg["To"].addresses[0].display_name == "李雷"
    assert msg["Cc"].addresses[0].addr_spec == "han@example.com"
    assert msg["From"].addresses[0].display_name == "客服中心"
    assert msg["Content-Language"] == "zh-CN"
    assert msg.get_body(("plain",)).get_content().startswith("您好，问题已经解决。")
    assert "<b>解决</b>" in msg.get_body(("html",)).get_content()
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == "发票.pdf"
    assert attachment.get_content() == b"%PDF-1.4 x"


def test_notifications_are_auto_submitted() -> None:
    msg = parsed(reply(automatic=True, subject="We received your request", in_reply_to=None, references=[]))
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Subject"] == "We received your request [#42]"
    assert msg["In-Reply-To"] is None and msg["References"] is None


def test_no_recipient_is_an_error_and_the_requester_address_is_the_fallback() -> None:
    with pytest.raises(ValueError):
        build_message(reply(route={}), from_address="support@acme.test")
    msg = parsed(reply(route={"to": "not an address"}), fallback_to="han@example.com")
    assert msg["To"] == "han@example.com"


@pytest.mark.parametrize(("url", "host", "port", "user", "password", "tls", "starttls"), [
    ("smtp://mail.test", "mail.test", 25, None, None, False, None),
    ("smtp://u%40x:p%3Aw@mail.test:587?starttls=true", "mail.test", 587, "u@x", "p:w", False, True),
    ("smtp://mail.test:2525?starttls=false", "mail.test", 2525, None, None, False, False),
    ("smtps://u:p@mail.test", "mail.test", 465, "u", "p", True, False),
])
def test_parse_smtp_url(url, host, port, user, password, tls, starttls) -> None:
    server = parse_smtp_url(url)
    assert (server.host, server.port, server.username, server.password, server.use_tls, server.start_tls) == (
        host, port, user, password, tls, starttls)
    assert password is None or f"'{password}'" not in repr(server)


@pytest.mark.parametrize("url", ["http://mail.test", "smtp://", "smtp://h:99999", "smtps://h?starttls=true",
                                 "smtp://h?starttls=maybe"])
def test_bad_smtp_urls(url) -> None:
    with pytest.raises(SmtpConfigError) as info:
        parse_smtp_url(url)
    assert "secret" not in str(info.value)


# ---- a real SMTP server -----------------------------------------------------------------------


class Recorder:
    """aiosmtpd handler: records messages; refuses or delays recipients by their local part."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        local = address.split("@")[0]
        if local == "unknown":
            return "550 5.1.1 No such user here"
        if local == "greylisted":
            return "451 4.7.1 Greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if any(r.startswith("full@") for r in envelope.rcpt_tos):
            return "552 5.2.2 Mailbox full"
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted for delivery"


def _authenticator(server, session, envelope, mechanism, auth_data):
    def text(value):
        return value.decode() if isinstance(value, bytes) else value

    ok = isinstance(auth_data, LoginPassword) and (text(auth_data.login), text(auth_data.password)) == ("agent", "s3cret")
    return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, Recorder]]:
    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port(), authenticator=_authenticator,
                            auth_require_tls=False, auth_required=False)
    controller.start()
    try:
        yield controller, recorder
    finally:
        controller.stop()


def _port(controller: Controller) -> int:
    return controller.port


async def test_sends_to_a_real_server(smtp_server) -> None:
    controller, recorder = smtp_server
    adapter = EmailAdapter(smtp_url=f"smtp://agent:s3cret@127.0.0.1:{_port(controller)}?starttls=false",
                           support_address="support@acme.test", timeout_s=5)
    result = await adapter.send(reply(subject="退款问题", body_text="已退款。"))
    assert result.outcome == "sent", result
    assert result.provider_id == "<reply-1@acme.test>"
    [(mail_from, rcpts, raw)] = recorder.messages
    assert mail_from == "support@acme.test" and rcpts == ["li@example.com"]
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Subject"] == "Re: 退款问题 [#42]"
    assert msg["In-Reply-To"] == "<customer-1@example.com>"


@pytest.mark.parametrize(("to", "outcome", "code"), [
    ("unknown@example.com", "permanent", "550"),
    ("greylisted@example.com", "transient", "451"),
    ("full@example.com", "permanent", "552"),
])
async def test_server_refusals_are_classified(smtp_server, to, outcome, code) -> None:
    controller, recorder = smtp_server
    adapter = EmailAdapter(smtp_url=f"smtp://127.0.0.1:{_port(controller)}", timeout_s=5)
    result = await adapter.send(reply(route={"to": to}))
    assert (result.outcome, result.code) == (outcome, code), result
    if code == "550":
        assert "No such user here" in (result.reason or "")
    assert recorder.messages == []


async def test_wrong_password_is_permanent_and_not_in_the_reason(smtp_server) -> None:
    controller, _ = smtp_server
    adapter = EmailAdapter(smtp_url=f"smtp://agent:wrong-pass-xyz@127.0.0.1:{_port(controller)}", timeout_s=5)
    result = await adapter.send(reply())
    assert result.outcome == "permanent" and result.code == "535", result
    assert "wrong-pass-xyz" not in repr(result) and "wrong-pass-xyz" not in repr(adapter.server)


async def test_a_server_that_is_down_is_transient() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    adapter = EmailAdapter(smtp_url=f"smtp://u:topsecret@127.0.0.1:{port}", timeout_s=2)
    result = await adapter.send(reply())
    assert result.outcome == "transient", result
    assert "topsecret" not in (result.reason or "")


async def test_a_server_that_never_answers_times_out_as_transient() -> None:
    async def silent(reader, writer):
        await asyncio.sleep(10)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        adapter = EmailAdapter(smtp_url=f"smtp://127.0.0.1:{port}", timeout_s=0.5)
        result = await adapter.send(reply())
        assert result.outcome == "transient", result
    finally:
        server.close()


async def test_no_address_is_undeliverable_and_no_config_is_permanent() -> None:
    adapter = EmailAdapter(smtp_url="")
    assert (await adapter.send(reply(route={}))).outcome == "undeliverable"
    result = await adapter.send(reply())
    assert result.outcome == "permanent" and "NOTIFY_SMTP_URL" in (result.reason or "")


# ---- the connection pool ------------------------------------------------------------------------


def _numbered(n: int) -> OutboundMessage:
    return reply(email_message_id=f"<pooled-{n}@acme.test>", subject=f"pooled {n}")


async def test_one_connection_carries_many_messages(smtp_server) -> None:
    controller, recorder = smtp_server
    adapter = EmailAdapter(smtp_url=f"smtp://agent:s3cret@127.0.0.1:{_port(controller)}?starttls=false", timeout_s=5)
    try:
        for n in range(5):
            assert (await adapter.send(_numbered(n))).outcome == "sent"
        assert len(recorder.messages) == 5
        assert adapter.pool.opened == 1  # connect, EHLO and AUTH once for five messages
    finally:
        await adapter.close()


async def test_a_connection_is_retired_after_max_messages(smtp_server) -> None:
    controller, recorder = smtp_server
    adapter = EmailAdapter(smtp_url=f"smtp://127.0.0.1:{_port(controller)}", timeout_s=5)
    adapter.pool.max_messages = 2
    try:
        for n in range(5):
            assert (await adapter.send(_numbered(n))).outcome == "sent"
        assert len(recorder.messages) == 5 and adapter.pool.opened == 3
    finally:
        await adapter.close()


async def test_a_connection_that_saw_an_error_is_not_reused(smtp_server) -> None:
    controller, recorder = smtp_server
    adapter = EmailAdapter(smtp_url=f"smtp://127.0.0.1:{_port(controller)}", timeout_s=5)
    try:
        assert (await adapter.send(_numbered(1))).outcome == "sent"
        refused = await adapter.send(reply(route={"to": "unknown@example.com"}))
        assert refused.outcome == "permanent"
        assert (await adapter.send(_numbered(2))).outcome == "sent"
        assert adapter.pool.opened == 2 and len(recorder.messages) == 2
    finally:
        await adapter.close()


async def test_a_connection_the_server_dropped_is_replaced_not_failed() -> None:
    recorder = Recorder()
    port = free_port()
    first = Controller(recorder, hostname="127.0.0.1", port=port)
    first.start()
    adapter = EmailAdapter(smtp_url=f"smtp://127.0.0.1:{port}", timeout_s=5)
    adapter.pool.check_after_s = 0.0  # ask NOOP before every reuse
    try:
        assert (await adapter.send(_numbered(1))).outcome == "sent"
        first.stop()  # the server goes away and comes back: the pooled session is dead
        second = Controller(recorder, hostname="127.0.0.1", port=port)
        second.start()
        try:
            result = await adapter.send(_numbered(2))
            assert result.outcome == "sent", result
            assert adapter.pool.opened == 2 and len(recorder.messages) == 2
        finally:
            second.stop()
    finally:
        await adapter.close()


def test_the_cached_header_classes_write_the_same_bytes_as_the_standard_policy(monkeypatch):
    """A message to a non-ASCII local part is built by the modern policy with the header
    registry's classes cached; what it writes must be byte for byte what the stock SMTP policy
    writes."""
    import re
    from datetime import UTC, datetime

    import notify_svc.channels.email as adapter

    message = OutboundMessage(
        delivery_id=uuid.uuid4(), channel="email", route={"to": "张伟 <张伟@example.cn>", "cc": "Ann <ann@example.com>"},
        subject="Order 123 arrived damaged / 包裹破损" * 3, body_text="我们已收到您的请求。\nThanks, we got it.",
        language="zh-CN", automatic=True, extra={"number": 1234}, in_reply_to="<a@b.cn>", references=["<r@b.cn>"],
        attachments=[Attachment(filename="发票 2026.pdf", content_type="application/pdf", content=b"%PDF-1.4 x")])
    now = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)

    def written() -> bytes:
        outgoing = compose(message, from_address="support@example.com", from_name="客服 Support", now=now)
        assert outgoing.international
        raw = outgoing.mime.as_bytes(policy=email.policy.SMTPUTF8)
        return re.sub(rb"===============\d+==", b"BOUNDARY", raw)

    ours = written()
    monkeypatch.setattr(adapter, "SMTP_POLICY", email.policy.SMTP)
    assert written() == ours
    assert "张伟@example.cn".encode() in ours


# ---- the wire form ------------------------------------------------------------------------------

def _display_name(raw: bytes, header: str) -> str:
    """The first display name of an address header, decoded as RFC 2047 says: whitespace between
    two encoded words is not part of the text (the modern parser keeps it in a phrase)."""
    value = email.message_from_bytes(raw, policy=email.policy.compat32)[header]
    [(name, _)] = email.utils.getaddresses([value])[:1]
    return str(make_header(decode_header(name)))


_ENCODED_WORD = re.compile(rb"=\?utf-8\?b\?[A-Za-z0-9+/=]*\?=", re.IGNORECASE)


@settings(max_examples=400, deadline=None)
@given(name=st.sampled_from(["Subject", "To", "Message-ID", "References", "Content-Language"]),
       value=st.text(st.characters(max_codepoint=127), max_size=120))
def test_the_wire_policy_folds_as_compat32_does(name, value) -> None:
    """Its shortcut (a printable ASCII header that fits, written as it is) must give what
    ``compat32`` itself writes, and every other header goes to ``compat32``."""
    stock = email.policy.compat32.clone(linesep="\r\n", max_line_length=76)
    try:
        expected = stock.fold(name, value), stock.fold_binary(name, value)
    except email.errors.HeaderParseError:  # a value with an embedded header: refused by both
        with pytest.raises(email.errors.HeaderParseError):
            WIRE_POLICY.fold(name, value)
        return
    assert (WIRE_POLICY.fold(name, value), WIRE_POLICY.fold_binary(name, value)) == expected


_header_words = st.text(st.characters(blacklist_categories=("Cs",), max_codepoint=0x1FFFF), max_size=300)


@settings(max_examples=150, deadline=None)
@given(subject=_header_words, name=_header_words, body=st.text(max_size=400), automatic=st.booleans())
def test_any_subject_name_and_body_reach_the_reader_intact_on_7bit_lines(subject, name, body, automatic) -> None:
    """Chinese, English, emoji, control characters, long words: the modern parser reads back
    what was meant, the message is ASCII, no line is longer than SMTP allows, no encoded word
    is longer than RFC 2047 allows."""
    message = reply(subject=subject, route={"to": "li@example.com"}, body_text=body, automatic=automatic)
    outgoing = compose(message, from_address="support@acme.test", from_name=name)
    raw = outgoing.mime.as_bytes()
    raw.decode("ascii")
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF line ends only
    assert all(len(word) <= 75 for word in _ENCODED_WORD.findall(raw))
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Subject"] == reply_subject(subject, 42, automatic=automatic)
    assert msg["From"].addresses[0].addr_spec == "support@acme.test"
    assert _display_name(raw, "From") == _one_line(name)
    expected_body = body.replace("\r\n", "\n").replace("\r", "\n")
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") in (expected_body, expected_body + "\n")
    assert outgoing.sender == "support@acme.test" and outgoing.recipients == ("li@example.com",)


def test_long_chinese_names_and_subjects_are_folded_into_short_encoded_words() -> None:
    name = "上海某某国际贸易有限公司客户服务中心华东区售后支持部"
    subject = "关于订单 #123 的问题：包裹在运输途中破损，请尽快安排补发或者退款，谢谢" * 2
    outgoing = compose(reply(subject=subject, route={"to": f"{name} <li@example.com>"}),
                       from_address="support@acme.test", from_name=name)
    raw = outgoing.mime.as_bytes()
    header_block = raw.split(b"\r\n\r\n")[0]
    assert all(len(line) <= 76 for line in header_block.split(b"\r\n"))
    assert all(len(word) <= 75 for word in _ENCODED_WORD.findall(raw))
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Subject"] == reply_subject(subject, 42)
    assert _display_name(raw, "To") == _display_name(raw, "From") == name


@pytest.mark.parametrize("subject", ["=?utf-8?b?5L2g5aW9?=", "Invoice =?x?q?y?= please"])
def test_ascii_that_looks_like_an_encoded_word_is_encoded_so_it_reads_as_written(subject) -> None:
    msg = parsed(reply(subject=subject, automatic=True, extra={}))
    assert msg["Subject"] == subject


def test_an_internationalised_domain_is_written_in_its_ascii_form() -> None:
    outgoing = compose(reply(route={"to": "张三 <zhang@例子.中国>", "cc": "han@例え.jp"}), from_address="support@acme.test")
    assert outgoing.recipients == ("zhang@xn--fsqu00a.xn--fiqs8s", "han@xn--r8jz45g.jp")
    assert not outgoing.international
    msg = email.message_from_bytes(outgoing.mime.as_bytes(), policy=email.policy.default)
    assert msg["To"].addresses[0].addr_spec == "zhang@xn--fsqu00a.xn--fiqs8s"
    assert msg["To"].addresses[0].display_name == "张三"


def test_a_domain_without_an_ascii_form_cannot_be_built() -> None:
    with pytest.raises(ValueError):
        compose(reply(route={"to": "li@例子..中国"}), from_address="support@acme.test")


def test_attachments_make_a_mixed_message_around_the_alternatives() -> None:
    message = reply(attachments=[Attachment(filename="a.txt", content_type="text/plain", content="第一行\n".encode()),
                                 Attachment(filename="x", content_type="multipart/mixed", content=b"\x00\x01")])
    msg = parsed(message)
    assert msg.get_content_type() == "multipart/mixed"
    first, *attachments = msg.iter_parts()
    assert first.get_content_type() == "multipart/alternative"
    assert [(a.get_filename(), a.get_content_type(), a.get_payload(decode=True)) for a in attachments] == [
        ("a.txt", "text/plain", "第一行\n".encode()), ("x", "application/octet-stream", b"\x00\x01")]


def test_ascii_text_stays_readable_and_a_long_line_is_encoded() -> None:
    short = parsed(reply(body_text="Hello,\n\nwe fixed it.")).get_body(("plain",))
    assert short["Content-Transfer-Encoding"] == "7bit"
    long = parsed(reply(body_text="x" * 1200)).get_body(("plain",))
    assert long["Content-Transfer-Encoding"] == "base64"
    assert long.get_content().strip() == "x" * 1200


@pytest.fixture
def ascii_only_server() -> Iterator[tuple[Controller, Recorder]]:
    """A server without SMTPUTF8 (aiosmtpd's controller offers it unless told not to)."""
    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port(), enable_SMTPUTF8=False)
    controller.start()
    try:
        yield controller, recorder
    finally:
        controller.stop()


async def test_the_envelope_holds_every_recipient_and_our_address(smtp_server) -> None:
    controller, recorder = smtp_server
    adapter = EmailAdapter(smtp_url=f"smtp://127.0.0.1:{_port(controller)}", support_address="support@acme.test",
                           timeout_s=5)
    try:
        message = reply(route={"to": ["李雷 <li@example.com>", "lucy@example.com"], "cc": "韩梅梅 <han@例子.中国>",
                               "bcc": "never@example.com"})
        assert (await adapter.send(message)).outcome == "sent"
    finally:
        await adapter.close()
    [(mail_from, rcpts, raw)] = recorder.messages
    assert mail_from == "support@acme.test"
    assert rcpts == ["li@example.com", "lucy@example.com", "han@xn--fsqu00a.xn--fiqs8s"]
    assert b"never@" not in raw and b"Bcc" not in raw
    raw.decode("ascii")


async def test_a_non_ascii_mailbox_goes_out_with_smtputf8_or_fails_permanently(smtp_server, ascii_only_server) -> None:
    controller, recorder = smtp_server
    adapter = EmailAdapter(smtp_url=f"smtp://127.0.0.1:{_port(controller)}", timeout_s=5)
    try:
        assert (await adapter.send(reply(route={"to": "张伟 <张伟@example.cn>"}))).outcome == "sent"
    finally:
        await adapter.close()
    [(_, rcpts, raw)] = recorder.messages
    assert rcpts == ["张伟@example.cn"]
    assert email.message_from_string(raw.decode(), policy=email.policy.default)["To"].addresses[0].addr_spec == "张伟@example.cn"
    plain, refused = ascii_only_server
    adapter = EmailAdapter(smtp_url=f"smtp://127.0.0.1:{_port(plain)}", timeout_s=5)
    try:
        result = await adapter.send(reply(route={"to": "张伟@example.cn"}))
        assert result.outcome == "permanent" and "does not support" in (result.reason or ""), result
        assert (await adapter.send(reply(route={"to": "zhang@例子.中国"}))).outcome == "sent"  # IDNA needs no SMTPUTF8
    finally:
        await adapter.close()
    [(_, rcpts, _)] = refused.messages
    assert rcpts == ["zhang@xn--fsqu00a.xn--fiqs8s"]


# ---- what a sender's fields cannot do to the wire -----------------------------------------------


@pytest.mark.parametrize("content_type", ["text/plain\r\nBcc: evil@example.com", "text/html\r\n\r\n<h1>Pay here</h1>",
                                          "text/plain\nfoo bar", "text/", "multipart/mixed", 'text/"x"'])
def test_an_attachment_content_type_is_a_token_pair_or_octet_stream(content_type) -> None:
    outgoing = compose(reply(attachments=[Attachment(filename="a.bin", content_type=content_type, content=b"\x01")]),
                       from_address="support@acme.test")
    raw = outgoing.mime.as_bytes()
    assert b"Bcc" not in raw and b"<h1>" not in raw and b"foo bar" not in raw
    [attachment] = list(email.message_from_bytes(raw, policy=email.policy.default).iter_attachments())
    assert attachment.get_content_type() == "application/octet-stream"
    assert attachment.get_filename() == "a.bin" and attachment.get_payload(decode=True) == b"\x01"


@pytest.mark.parametrize("filename", ["发票" * 60 + ".pdf", "x" * 1500 + ".txt", 'a "quoted" \\ name.pdf',
                                      "line\r\nBcc: evil@example.com.pdf", "100% sure; (really).pdf"])
def test_any_file_name_is_carried_intact_on_short_lines(filename) -> None:
    raw = compose(reply(attachments=[Attachment(filename=filename, content_type="application/pdf", content=b"%PDF")]),
                  from_address="support@acme.test").mime.as_bytes()
    raw.decode("ascii")
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    disposition = raw.split(b"Content-Disposition:")[1].split(b"\r\n\r\n")[0]
    assert all(len(line) <= 78 for line in disposition.split(b"\r\n"))
    assert b"\r\nBcc" not in raw
    [attachment] = list(email.message_from_bytes(raw, policy=email.policy.default).iter_attachments())
    assert attachment.get_filename() == _one_line(filename)


def test_a_subject_without_spaces_is_folded_as_encoded_words() -> None:
    subject = "x" * 1200
    raw = compose(reply(subject=subject), from_address="support@acme.test").mime.as_bytes()
    assert all(len(line) <= 76 for line in raw.split(b"\r\n\r\n")[0].split(b"\r\n"))
    assert email.message_from_bytes(raw, policy=email.policy.default)["Subject"] == f"Re: {subject} [#42]"


def test_idna_2008_keeps_a_sharp_s_domain_its_own() -> None:
    assert compose(reply(route={"to": "hans@straße.de"}), from_address="support@acme.test").recipients == (
        "hans@xn--strae-oqa.de",)


def test_a_cc_that_cannot_be_encoded_is_left_out_not_the_whole_reply() -> None:
    outgoing = compose(reply(route={"to": "li@example.com", "cc": ["x@例子..中国", "han@example.com"]}),
                       from_address="support@acme.test")
    assert outgoing.recipients == ("li@example.com", "han@example.com")
    assert outgoing.dropped == ("x@例子..中国",)
    assert email.message_from_bytes(outgoing.mime.as_bytes(), policy=email.policy.default)["Cc"] == "han@example.com"
    with pytest.raises(ValueError):
        compose(reply(route={"to": "x@例子..中国"}), from_address="support@acme.test")


@pytest.mark.parametrize("bad_id", ["<é@x>", "<a\udcff@x>", "<a b@x>", "<" + "a" * 300 + "@x>"])
def test_an_id_that_cannot_be_a_message_id_is_left_out(bad_id) -> None:
    outgoing = compose(reply(email_message_id=bad_id, in_reply_to=bad_id, references=[bad_id, "<ok@example.com>"]),
                       from_address="support@acme.test")
    raw = outgoing.mime.as_bytes()
    raw.decode("ascii")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Message-ID"] == f"<{DELIVERY_ID}@acme.test>"
    assert msg["In-Reply-To"] is None and msg["References"] == "<ok@example.com>"


async def test_a_reply_with_an_unencodable_cc_is_sent_and_says_who_was_left_out(smtp_server) -> None:
    controller, recorder = smtp_server
    adapter = EmailAdapter(smtp_url=f"smtp://127.0.0.1:{_port(controller)}", timeout_s=5)
    try:
        result = await adapter.send(reply(route={"to": "li@example.com", "cc": "x@例子..中国"}))
        broken = await adapter.send(reply(attachments=[Attachment(filename="a", content_type="text/plain",
                                                                  content=b"x")], subject="\udcff"))
    finally:
        await adapter.close()
    assert result.outcome == "sent" and "x@例子..中国: the domain cannot be encoded" in (result.reason or ""), result
    assert broken.outcome == "permanent", broken
    assert adapter.pool.opened == 1 and len(recorder.messages) == 1  # the unwritable message took no connection
