"""The HTML sanitiser (issue 9, "Also fix" 2): nothing in a stored message may load from the
network when an agent opens it (a remote image is a read receipt for whoever sent it), while
inline mail images (cid:) and small data: images still show."""

import base64

import pytest

from ticket_svc.conversation.sanitize import MAX_DATA_IMAGE, sanitize_html

PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40).decode()


@pytest.mark.parametrize(("html", "expected"), [
    # remote images: the src goes, the alt text stays
    ('<img src="https://t.example/p.gif?u=42" alt="logo">', '<img alt="logo">'),
    ('<img src="http://t.example/p.gif">', "<img>"),
    ('<img src="HTTPS://T.EXAMPLE/P.GIF" alt="x">', '<img alt="x">'),
    ('<img src="  https://t.example/p.gif" alt="x">', '<img alt="x">'),
    ('<img src="//t.example/p.gif" alt="x">', '<img alt="x">'),  # protocol-relative
    ('<img src="/p.gif" alt="x">', '<img alt="x">'),  # relative: resolves against whatever page shows it
    ('<img src="p.gif" alt="x">', '<img alt="x">'),
    ('<img srcset="https://t.example/a.png 1x, https://t.example/b.png 2x" alt="x">', '<img alt="x">'),
    ('<img lowsrc="https://t.example/a.png" dynsrc="https://t.example/b.avi" alt="x">', '<img alt="x">'),
    # other ways to load something
    ('<table background="https://t.example/bg.png"><tr><td background="https://t.example/c.png">a</td></tr></table>',
     "<table><tbody><tr><td>a</td></tr></tbody></table>"),
    ('<div style="background:url(https://t.example/p.png)">a</div>', "<div>a</div>"),
    ('<p style="background-image: url(\'https://t.example/p.png\')">a</p>', "<p>a</p>"),
    ("<style>body{background:url(https://t.example/p.png)}</style><p>a</p>", "<p>a</p>"),
    ('<link rel="stylesheet" href="https://t.example/s.css"><p>a</p>', "<p>a</p>"),
    ('<video poster="https://t.example/p.png" src="https://t.example/v.mp4"></video>a', "a"),
    ('<audio src="https://t.example/a.mp3"></audio>a', "a"),
    ('<iframe src="https://t.example/"></iframe>a', "a"),
    ('<object data="https://t.example/o"></object>a', "a"),
    ('<embed src="https://t.example/e">a', "a"),
    ('<input type="image" src="https://t.example/i.png">a', "a"),
    ('<svg><image href="https://t.example/i.png"/></svg>a', "a"),
    ('<a href="https://example.com/x" ping="https://t.example/ping">link</a>',
     '<a href="https://example.com/x" rel="noopener noreferrer nofollow">link</a>'),
    # kept: inline attachments and small data: images of an image type
    ('<img src="cid:logo@mail.example" alt="logo">', '<img src="cid:logo@mail.example" alt="logo">'),
    ('<img src="CID:logo@mail.example">', '<img src="CID:logo@mail.example">'),
    (f'<img src="{PNG}" alt="dot">', f'<img src="{PNG}" alt="dot">'),
    ('<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">', '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'),
    # refused data: URIs: not an image type, SVG (can carry script and references), not base64, elsewhere than img
    ('<img src="data:image/svg+xml;base64,PHN2Zy8+" alt="x">', '<img alt="x">'),
    ('<img src="data:text/html;base64,PHNjcmlwdD4=" alt="x">', '<img alt="x">'),
    ('<img src="data:image/png,raw" alt="x">', '<img alt="x">'),
    ('<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>', '<a rel="noopener noreferrer nofollow">x</a>'),
    ('<a href="cid:part1@mail.example">x</a>', '<a rel="noopener noreferrer nofollow">x</a>'),
    # what was already refused stays refused
    ('<img src="javascript:alert(1)" onerror="alert(1)" alt="x">', '<img alt="x">'),
    ("<script>alert(1)</script><b>bold</b>", "<b>bold</b>"),
    ('<a href="mailto:a@example.com">mail</a>', '<a href="mailto:a@example.com" rel="noopener noreferrer nofollow">mail</a>'),
])
def test_sanitize(html: str, expected: str) -> None:
    assert sanitize_html(html) == expected


def test_a_large_data_image_is_dropped() -> None:
    big = "data:image/png;base64," + "A" * MAX_DATA_IMAGE
    assert sanitize_html(f'<img src="{big}" alt="photo">') == '<img alt="photo">'
    fits = "data:image/png;base64," + "A" * (MAX_DATA_IMAGE - len("data:image/png;base64,"))
    assert sanitize_html(f'<img src="{fits}">') == f'<img src="{fits}">'


def test_the_size_and_title_of_a_blocked_image_stay() -> None:
    kept = sanitize_html('<img src="https://t.example/p.gif" alt="logo" title="t" width="120" height="40">')
    assert "src" not in kept
    assert all(f'{name}="{value}"' in kept for name, value in (("alt", "logo"), ("title", "t"), ("width", "120"),
                                                                  ("height", "40")))


def test_empty() -> None:
    assert sanitize_html(None) is None and sanitize_html("") is None
