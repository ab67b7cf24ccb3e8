"""The shared HTML allow-list under a caller's image policy, and the shared attachment rules
(ticket-svc's own table tests cover the mail policy: services/ticket-svc/tests/conversation)."""

import pytest

from helpdesk_common.attachments import (MAX_ATTACHMENT_BYTES, content_disposition, refused_reason,
                                         sniff_image_type)
from helpdesk_common.html_sanitize import mail_image_source, sanitize_html


def _web_images(src: str) -> bool:
    return src.startswith(("https://", "/files/"))


@pytest.mark.parametrize(("html", "expected"), [
    ('<img src="https://cdn.example/a.png" alt="a">', '<img src="https://cdn.example/a.png" alt="a">'),
    ('<img src="/files/1.png">', '<img src="/files/1.png">'),
    ('<img src="http://cdn.example/a.png" alt="a">', '<img alt="a">'),  # the policy refuses plain http here
    ('<img src="javascript:alert(1)" alt="a">', '<img alt="a">'),
    ('<img src="x" onerror="alert(1)">', "<img>"),
    ("<script>alert(1)</script><p>t</p>", "<p>t</p>"),
    ('<iframe src="https://e.example"></iframe>t', "t"),
    ('<a href="javascript:alert(1)">x</a>', '<a rel="noopener noreferrer nofollow">x</a>'),
])
def test_a_callers_image_policy_decides_image_sources_only(html, expected):
    assert sanitize_html(html, image_source=_web_images) == expected


def test_the_default_policy_is_the_mail_one():
    assert sanitize_html('<img src="https://t.example/p.gif" alt="x">') == '<img alt="x">'
    assert mail_image_source("cid:logo@x") and not mail_image_source("https://t.example/p.gif")


@pytest.mark.parametrize(("content", "expected"), [
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 8, "image/png"),
    (b"GIF89a\x01\x00", "image/gif"),
    (b"GIF87a\x01\x00", "image/gif"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'><script/></svg>", None),
    (b"<html><script>alert(1)</script>", None),
    (b"RIFF\x00\x00\x00\x00WAVE", None),
    (b"", None),
])
def test_sniffing_trusts_bytes_not_names(content, expected):
    assert sniff_image_type(content) == expected


@pytest.mark.parametrize(("name", "content_type", "size", "refused"), [
    ("guide.pdf", "application/pdf", 10, False),
    ("setup.exe", "application/octet-stream", 10, True),
    ("notes.txt", "application/javascript", 10, True),
    ("big.png", "image/png", MAX_ATTACHMENT_BYTES + 1, True),
    ("退款流程.png", "image/png", MAX_ATTACHMENT_BYTES, False),
])
def test_refused_reasons(name, content_type, size, refused):
    assert (refused_reason(name, content_type, size) is not None) is refused


def test_inline_disposition_keeps_the_encoded_name():
    assert content_disposition("图.png", inline=True) == "inline; filename=\"_.png\"; filename*=UTF-8''%E5%9B%BE.png"
    assert content_disposition('a"\r\nb.txt').startswith('attachment; filename="a\\"b.txt"')


@pytest.mark.parametrize(("method", "path", "intake"), [
    ("POST", "/v1/kb/articles/6f1c2b9e-0000-4000-8000-000000000000/attachments", True),
    ("GET", "/v1/kb/articles/6f1c2b9e-0000-4000-8000-000000000000/attachments", False),
    ("POST", "/v1/kb/articles", False),
    ("POST", "/v1/kb/articles/6f1c2b9e-0000-4000-8000-000000000000/publish", False),
    ("POST", "/v1/kb/articles/x/attachments", False),
])
def test_kb_uploads_take_the_larger_body_limit(method, path, intake):
    from helpdesk_common.observability import is_intake_request

    assert is_intake_request({"type": "http", "method": method, "path": path, "headers": []}) is intake
