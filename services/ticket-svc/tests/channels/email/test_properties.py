"""Whatever arrives at the e-mail endpoint, the parser answers or says InvalidPayload (pure)."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ticket_svc.channels.email import parse_email
from ticket_svc.channels.email.decode import decode_bytes, decode_header, parse_mime_header
from ticket_svc.channels.email.html_text import html_to_text
from ticket_svc.channels.email.quotes import strip_quoted
from ticket_svc.channels.inbound import Ignored, InboundMessage, InvalidPayload

CORPUS = sorted(Path(__file__).with_name("corpus").glob("*.eml"))
SETTINGS = settings(max_examples=int(os.environ.get("EMAIL_FUZZ_EXAMPLES", "150")), deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(raw: bytes) -> None:
    try:
        result = parse_email(raw)
    except InvalidPayload:
        return
    assert isinstance(result, (InboundMessage, Ignored))
    if isinstance(result, InboundMessage):
        assert isinstance(result.body_text, str)
        assert result.external_id
        assert all(isinstance(ref, str) and ref for ref in result.thread_refs)
        assert all(a.filename for a in result.attachments)
        result.body_text.encode("utf-8")  # no lone surrogates leak out of the decoder
        (result.subject or "").encode("utf-8")
        (result.sender.name or "").encode("utf-8")
        for attachment in result.attachments:
            attachment.filename.encode("utf-8")


@SETTINGS
@given(st.binary(max_size=2000))
def test_arbitrary_bytes(raw: bytes):
    check(raw)


@st.composite
def mutated_corpus_file(draw: st.DrawFn) -> bytes:
    data = bytearray(CORPUS[draw(st.integers(0, len(CORPUS) - 1))].read_bytes())
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "delete", "insert", "truncate", "duplicate"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 64))]
        elif kind == "insert":
            data[at:at] = draw(st.one_of(
                st.binary(max_size=32),
                st.sampled_from([b"\r\n", b"\r\n\r\n", b"=?", b"?=", b"=?gb2312?B?", b"--", b";", b'"', b"\\",
                                 b"boundary=", b"charset=x-nonsense", b"Content-Type: multipart/mixed\r\n",
                                 b"Content-Transfer-Encoding: base64\r\n", b"=\r\n", b"=C", b"*0*=", b"%E6%"]),
            ))
        elif kind == "truncate":
            del data[at:]
        elif kind == "duplicate" and data:
            end = min(len(data), at + draw(st.integers(1, 200)))
            data[at:at] = data[at:end]
    return bytes(data)


@SETTINGS
@given(mutated_corpus_file())
def test_mutated_corpus_files(raw: bytes):
    check(raw)


HEADER_NAMES = ["From", "To", "Cc", "Reply-To", "Subject", "Date", "Message-ID", "In-Reply-To", "References",
                "Content-Type", "Content-Disposition", "Content-Transfer-Encoding", "Auto-Submitted", "Precedence",
                "X-Auto-Response-Suppress", "List-Id", "Return-Path", "Content-ID", "MIME-Version"]
CHARSETS = ["utf-8", "gb2312", "gbk", "GB18030", "big5", "iso-8859-1", "us-ascii", "x-unknown", "utf-7", "", "*"]


@st.composite
def header_soup(draw: st.DrawFn) -> bytes:
    """Plausible header blocks with hostile values, to reach every header decoder."""
    lines = []
    for _ in range(draw(st.integers(1, 8))):
        name = draw(st.sampled_from(HEADER_NAMES))
        value = draw(st.one_of(
            st.text(max_size=60),
            st.builds(lambda cs, enc, body: f"=?{cs}?{enc}?{body}?=", st.sampled_from(CHARSETS),
                      st.sampled_from(["B", "Q", "b", "q", "X"]), st.text(alphabet="ABCDabcd0123+/=_%?", max_size=24)),
            st.builds(lambda t, cs: f"{t}; charset={cs}; name*0*={cs}''%E6%8A; name*1*=%A5x; boundary=\"b\"",
                      st.sampled_from(["text/plain", "text/html", "multipart/mixed", "multipart/report", "image/png",
                                       "message/rfc822", "garbage"]), st.sampled_from(CHARSETS)),
        ))
        lines.append(f"{name}: {value}".encode("utf-8", "surrogatepass"))
    body = draw(st.binary(max_size=200))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@SETTINGS
@given(header_soup())
def test_hostile_headers(raw: bytes):
    check(raw)


@SETTINGS
@given(st.text(max_size=300), st.sampled_from(CHARSETS))
def test_decoders_never_raise(text: str, charset: str):
    assert isinstance(decode_header(text), str)
    assert isinstance(parse_mime_header(text)[1], dict)
    assert isinstance(decode_bytes(text.encode("utf-8", "surrogatepass"), charset), str)
    assert isinstance(html_to_text(text), str)
    assert isinstance(strip_quoted(text), str)


@SETTINGS
@given(st.lists(st.sampled_from(["> quoted", "new text", "", "On Mon, Jan 5 Bob wrote:", "-- ", "sig",
                                 "From: a", "Sent: b", "Subject: c", "-----Original Message-----", "写道：",
                                 "发件人: x", "发送时间: y", "主题: z"]), max_size=30))
def test_stripping_only_removes_lines(lines: list[str]):
    text = "\n".join(lines)
    stripped = strip_quoted(text)
    remaining = [line.rstrip() for line in text.split("\n")]
    for line in stripped.split("\n"):
        assert line in remaining
