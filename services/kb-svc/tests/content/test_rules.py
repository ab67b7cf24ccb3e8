"""The content model's pure rules: BCP 47 locales, language choice, labels, article HTML and
its text (table-driven and property-based)."""

from html.parser import HTMLParser

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kb_svc.content import rules


@pytest.mark.parametrize(("tag", "canonical"), [
    ("zh-CN", "zh-CN"), ("zh-cn", "zh-CN"), ("zh_CN", "zh-CN"), ("EN", "en"), ("en-us", "en-US"),
    ("zh-hant-tw", "zh-Hant-TW"), ("sr-latn-rs", "sr-Latn-RS"), ("es-419", "es-419"), ("de-CH-1901", "de-CH-1901"),
    ("en-US-x-Twain", "en-US-x-twain"), ("yue-HK", "yue-HK"), ("  ja ", "ja"),
    ("", None), ("x", None), ("中文", None), ("en-", None), ("-en", None), ("en--US", None), ("e1", None),
    ("en US", None), ("a" * 40, None), ("zh-CN\x00", None),
])
def test_canonical_locale(tag, canonical):
    assert rules.canonical_locale(tag) == canonical


@given(st.text(max_size=40))
def test_canonical_locale_is_idempotent_and_bounded(tag):
    canonical = rules.canonical_locale(tag)
    if canonical is not None:
        assert rules.canonical_locale(canonical) == canonical
        assert len(canonical) <= rules.LOCALE_MAX_CHARS and canonical.isascii()


@pytest.mark.parametrize(("available", "accept", "chosen"), [
    (["en", "zh-CN"], "zh-CN", "zh-CN"),
    (["en", "zh-CN"], "zh-TW,zh;q=0.9", "zh-CN"),          # same language
    (["en", "zh-CN"], "fr, en;q=0.5", "en"),
    (["en", "zh-CN"], "en;q=0.2, zh;q=0.8", "zh-CN"),       # by quality, not by order
    (["en", "zh-CN"], None, "en"),                          # default English
    (["ja", "zh-CN"], "fr", "ja"),                          # else the first
    (["en", "zh-CN"], "zh;q=0, en", "en"),                  # q=0: not acceptable
    (["en", "zh-CN"], "garbage;;;,**", "en"),
    ([], "en", None),
])
def test_preferred_locale(available, accept, chosen):
    assert rules.preferred_locale(available, accept) == chosen


@pytest.mark.parametrize(("accept", "first"), [
    ("zh-TW,zh;q=0.9", "zh-TW"), ("en;q=0.2, zh_cn;q=0.8", "zh-CN"), ("*", None), (None, None), ("", None),
    ("zh;q=0", None), ("中文, en", "en"),
])
def test_first_accepted(accept, first):
    assert rules.first_accepted(accept) == first


@given(st.lists(st.sampled_from(["en", "zh-CN", "ja", "de-CH"]), unique=True, min_size=1), st.text(max_size=60))
def test_preferred_locale_always_picks_an_available_one(available, accept):
    assert rules.preferred_locale(available, accept) in available


@pytest.mark.parametrize(("labels", "expected"), [
    ([" 退款 ", "退款"], ["退款"]), (["Billing", "BILLING", "billing "], ["Billing"]), (["ＶＩＰ", "vip"], ["VIP"]),
    (["", "  "], []), (["b", "a"], ["b", "a"]),
])
def test_normalise_labels(labels, expected):
    assert rules.normalise_labels(labels) == expected


@pytest.mark.parametrize(("src", "kept"), [
    ("https://cdn.example.com/a.png", True), ("http://cdn.example.com/a.png", True),
    ("/v1/kb/public/articles/6f1c2b9e-0000-4000-8000-000000000000/attachments/6f1c2b9e-0000-4000-8000-000000000001",
     True),
    ("/v1/kb/articles/6f1c2b9e-0000-4000-8000-000000000000/attachments/6f1c2b9e-0000-4000-8000-000000000001", True),
    ("data:image/png;base64,iVBORw0KGgo=", True),
    ("javascript:alert(1)", False), ("data:image/svg+xml;base64,PHN2Zy8+", False), ("cid:logo@x", False),
    ("/v1/tickets/1/attachments/2", False), ("//evil.example/a.png", False), ("a.png", False),
    ("https://" + "a" * 3000, False),
])
def test_article_image_sources(src, kept):
    assert rules.article_image_source(src) is kept


@pytest.mark.parametrize(("html", "expected"), [
    ('<p>Hi</p><script>alert(1)</script>', "<p>Hi</p>"),
    ('<a href="javascript:alert(1)">x</a>', '<a rel="noopener noreferrer nofollow">x</a>'),
    ('<a href="/v1/kb/public/articles/x">x</a>', '<a href="/v1/kb/public/articles/x" rel="noopener noreferrer nofollow">x</a>'),
    ('<p onclick="x()">t</p>', "<p>t</p>"),
    ('<iframe src="https://e.example"></iframe>t', "t"),
    ('<img src="https://cdn.example/a.png" alt="图">', '<img src="https://cdn.example/a.png" alt="图">'),
    ('<form action="/x"><input name="a"></form>t', "t"),
    ('<p style="background:url(https://t.example/p.png)">t</p>', "<p>t</p>"),
    ("", ""),
])
def test_sanitize_article_html(html, expected):
    assert rules.sanitize_article_html(html) == expected


@pytest.mark.parametrize(("html", "text"), [
    ("<h1>如何申请退款</h1><p>在订单页点击<b>申请退款</b>。</p>", "如何申请退款\n在订单页点击申请退款。"),
    ("<p>Refunds&nbsp;take <i>5</i>&amp;more   days</p>", "Refunds take 5&more days"),
    ("<ul><li>one</li><li>two</li></ul>", "one\ntwo"),
    ('<p>See <img alt="screenshot" src="x"> here</p>', "See screenshot here"),
    ("", ""),
])
def test_body_text(html, text):
    assert rules.body_text(html) == text


_MARKUP = st.lists(st.sampled_from([
    "<script>", "</script>", "<p>", "</p>", "<a href=\"", "<img src=\"", "\" onerror=\"x()\">", "\">",
    "javascript:", "JaVaScRiPt:", "https://e.example/", "<iframe src=\"", "<svg onload=x>", "文字", "text", " ",
    "&#106;avascript:", "<style>", "</a>",
]), max_size=30).map("".join)


class _Tags(HTMLParser):
    """Every start tag of a document with its attributes, as a browser's tokenizer reads them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    handle_startendtag = handle_starttag


@given(st.one_of(_MARKUP, st.text(max_size=300)))
def test_sanitised_html_never_keeps_script_or_handlers(html):
    clean = rules.sanitize_article_html(html)
    parser = _Tags()
    parser.feed(clean)
    parser.close()
    for tag, attrs in parser.tags:
        assert tag not in ("script", "iframe", "svg", "style", "object", "embed", "form")
        for name, value in attrs:
            assert not name.startswith("on"), (tag, name)
            if name in ("href", "src"):
                assert not (value or "").strip().lower().startswith("javascript:"), (tag, value)
    assert rules.sanitize_article_html(rules.sanitize_article_html(html)) == rules.sanitize_article_html(html)


@given(st.text(max_size=300))
def test_body_text_has_no_markup_and_no_blank_lines(html):
    text = rules.body_text(rules.sanitize_article_html(html))
    assert "\n\n" not in text and text == text.strip()


def test_cache_control():
    assert rules.cache_control("public") == "public, max-age=300"
    assert rules.cache_control("customers") == rules.cache_control("agents") == "private, no-cache"
