"""Stored XSS: every payload of ``xss_corpus.txt`` through every HTML-bearing input comes back inert.

HTML-bearing inputs (found by where the services accept or produce HTML):

| input | where it is cleaned | read back here |
|---|---|---|
| ticket messages, API ``html`` | ticket-svc ``conversation/sanitize.py`` (shared allow-list) | ``GET /v1/tickets/{id}/messages`` |
| ticket messages, e-mail intake (HTML part) | the same, in ``channels/inbound.py`` | the same |
| knowledge-base article bodies (draft and published) | kb-svc ``content/rules.py`` (shared allow-list, article images) | the editor's read and the anonymous public read |
| notification templates (admin HTML + customer values) | notify-svc ``notifications/render.py``: autoescaped values, then the shared allow-list with e-mail styles | ``POST /v1/notification-templates/preview`` |
| reply e-mails built from a reply's text | notify-svc ``channels/email.py`` ``text_to_html`` (escaped) | the MIME message's HTML part |
| the survey and confirmation pages (a refused comment is shown again) | customer-svc ``surveys/page.py``, ticket-svc ``confirmations/page.py`` (escaped) | the rendered page |

Plain-text fields (subjects, customer notes, survey comments, macro replies, web-form fields)
are text: stored and answered byte for byte as JSON strings, never as markup; the services that
turn them into HTML escape them (the last two rows).

"Inert" (``live_parts``): no element that runs or loads script (script, style, iframe, object,
embed, svg, math, form, base, meta, link, template...), no ``on*`` attribute, no ``style``
attribute with ``expression``/``url``/``javascript``, and no URL attribute whose scheme (after
entity decoding and dropping whitespace and control characters, as browsers do) is
``javascript:``, ``vbscript:`` or a ``data:`` document. The Chinese of each payload must survive.
"""

from __future__ import annotations

import re
import uuid
from email import message_from_bytes
from email.policy import default as default_policy
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, running_app, service_env

CORPUS = [line for line in (Path(__file__).parent / "xss_corpus.txt").read_text(encoding="utf-8").splitlines()
          if line.strip() and not line.startswith("# ")]

_ACTIVE = {"script", "style", "iframe", "frame", "frameset", "object", "embed", "applet", "svg", "math", "form",
           "input", "button", "select", "textarea", "base", "link", "template", "noscript", "noembed",
           "isindex", "video", "audio", "source", "marquee", "details", "animate", "use", "xml"}
_URL_ATTRIBUTES = {"href", "src", "action", "formaction", "background", "data", "xlink:href", "srcdoc", "poster",
                   "lowsrc", "dynsrc", "content", "codebase", "cite", "longdesc"}
_CONTROL = re.compile(r"[\x00-\x20\x7f]+")
_CJK = re.compile(r"[\u4e00-\u9fff]+")


class _Live(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _ACTIVE:
            self.found.append(f"<{tag}>")
        if tag == "meta" and any(name == "http-equiv" for name, _ in attrs):  # <meta charset> is harmless
            self.found.append("<meta http-equiv>")
        for name, value in attrs:
            value = value or ""
            if name.startswith("on"):
                self.found.append(f"{tag}[{name}]")
            if name == "style" and re.search(r"expression|url\s*\(|javascript|behavior", value, re.I):
                self.found.append(f"{tag}[style={value[:40]}]")
            if name in _URL_ATTRIBUTES:
                squeezed = _CONTROL.sub("", value).lower()
                if squeezed.startswith(("javascript:", "vbscript:", "data:text/html", "data:image/svg",
                                        "data:application", "data:text/xml")) or "javascript:" in squeezed:
                    self.found.append(f"{tag}[{name}={value[:40]}]")

    handle_startendtag = handle_starttag


def live_parts(html: str | None) -> list[str]:
    """What in ``html`` could run script or load a document (empty: inert)."""
    if not html:
        return []
    parser = _Live()
    parser.feed(html)
    parser.close()
    return parser.found


def chinese_of(text: str) -> list[str]:
    return _CJK.findall(text)


def test_the_corpus_is_large_and_mixed() -> None:
    assert len(CORPUS) >= 50
    assert sum(1 for p in CORPUS if chinese_of(p)) >= 40
    assert len(set(CORPUS)) == len(CORPUS)


def test_the_checker_sees_the_payloads_as_live() -> None:
    """The check must be able to fail: the raw payloads (those written as elements or attributes,
    not the ones that only work through a parser quirk) are reported."""
    flagged = [p for p in CORPUS if live_parts(p)]
    assert len(flagged) >= 0.8 * len(CORPUS), [p for p in CORPUS if not live_parts(p)]
    assert live_parts('<a href="  java\tscript:alert(1)">x</a>') and live_parts("<img src=x onerror=alert(1)>")
    assert live_parts('<p style="width: expression(alert(1))">') and not live_parts("<p>退款 &lt;script&gt;</p>")


@pytest.mark.parametrize("payload", CORPUS)
def test_the_shared_allow_list_makes_every_payload_inert(payload: str) -> None:
    from helpdesk_common.html_sanitize import EMAIL_STYLE_PROPERTIES, mail_image_source, sanitize_html
    from kb_svc.content.rules import article_image_source

    for policy, styles in ((mail_image_source, frozenset()), (article_image_source, frozenset()),
                           (mail_image_source, EMAIL_STYLE_PROPERTIES)):
        cleaned = sanitize_html(payload, image_source=policy, styles=styles) or ""
        assert not live_parts(cleaned), (payload, cleaned)
        assert all(w in cleaned for w in _EXPECTED[payload]), (payload, cleaned)


#: elements the allow-list removes together with their content
_DROPPED = {"script", "style", "svg", "math", "textarea", "iframe", "noscript", "noembed", "template", "select",
            "object", "title", "xmp", "iframe", "noframes", "plaintext"}


class _Text(HTMLParser):
    """The text a reader sees: data outside the elements removed with their content."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.depth += tag in _DROPPED

    def handle_endtag(self, tag: str) -> None:
        self.depth -= tag in _DROPPED and self.depth > 0

    def handle_data(self, data: str) -> None:
        if not self.depth:
            self.parts.append(data)


def _kept_chinese(payload: str) -> list[str]:
    """Per text node; no ``close()``: a tag left open at the end is dropped, as browsers drop it."""
    parser = _Text()
    parser.feed(payload)
    return [w for part in parser.parts for w in chinese_of(part)]


_EXPECTED = {p: _kept_chinese(p) for p in CORPUS}


# --- ticket-svc: API messages and e-mail intake ------------------------------------------------

AGENT = Principal(kind="user", id=str(uuid.uuid4()), role="admin")
WEB = Principal(kind="channel", id=str(uuid.uuid4()), channel="web")
MAIL = Principal(kind="channel", id=str(uuid.uuid4()), channel="email")


def _api(module: str, prefix: str, infra: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``module``'s API alone (no consumers, no relay) on a fresh real database."""
    import importlib

    service_env(monkeypatch, infra, prefix, infra.new_database(module))
    monkeypatch.setenv(f"{prefix}CONSUMERS_ENABLED", "false")
    monkeypatch.setenv(f"{prefix}RELAY_ENABLED", "false")
    settings = importlib.import_module(f"{module}.config").Settings()
    return running_app(importlib.import_module(f"{module}.main").create_app(settings))


@pytest.fixture
async def ticket_api(infra: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    async with _api("ticket_svc", "TICKET_", infra, monkeypatch) as client:
        yield client


def _survives(payload: str, html: str) -> list[str]:
    """The payload's readable Chinese that ``html`` lost."""
    return [w for w in _EXPECTED[payload] if w not in html]


async def test_ticket_messages_from_the_api_and_from_email_are_inert(ticket_api: Any) -> None:
    ticket = await ticket_api.post("/v1/tickets", json={"subject": "退款 <script>alert(1)</script>",
                                                       "requester": {"email": "buyer@example.com"}},
                                   headers=identity_headers(WEB))
    assert ticket.status_code == 201, ticket.text
    ticket_id = ticket.json()["id"]
    for payload in CORPUS:
        posted = await ticket_api.post(f"/v1/tickets/{ticket_id}/messages", json={"body": payload, "html": payload},
                                       headers=identity_headers(WEB))
        assert posted.status_code == 201, posted.text
    mail_ids = []
    for i, payload in enumerate(CORPUS):
        raw = ("From: Buyer <buyer@example.com>\r\nTo: support@example.com\r\nSubject: =?utf-8?b?6YCA5qy+?=\r\n"
               f"Message-ID: <xss-{i}@mail.example.com>\r\nMIME-Version: 1.0\r\n"
               "Content-Type: text/html; charset=UTF-8\r\n\r\n" + payload + "\r\n").encode()
        r = await ticket_api.post("/v1/channels/email/inbound", content=raw,
                                  headers={**identity_headers(MAIL), "Content-Type": "message/rfc822"})
        assert r.status_code == 201, r.text
        mail_ids.append((r.json()["ticket_id"], payload))

    messages = []
    cursor = None
    while True:
        page = await ticket_api.get(f"/v1/tickets/{ticket_id}/messages",
                                    params={"limit": 100, **({"cursor": cursor} if cursor else {})},
                                    headers=identity_headers(AGENT))
        assert page.status_code == 200, page.text
        messages += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    by_text = {m["body_text"]: m for m in messages}
    problems = []
    for payload in CORPUS:
        message = by_text.get(payload)
        assert message is not None, payload  # the text is kept as written: text, never markup
        if live := live_parts(message["body_html"]):
            problems.append((payload, live))
        if lost := _survives(payload, message["body_html"] or ""):
            problems.append((payload, "lost", lost))
    for mail_ticket, payload in mail_ids:
        items = (await ticket_api.get(f"/v1/tickets/{mail_ticket}/messages",
                                      headers=identity_headers(AGENT))).json()["items"]
        for m in items:
            if live := live_parts(m["body_html"]):
                problems.append(("mail", payload, live))
        if lost := [w for w in _survives(payload, " ".join((m["body_html"] or "") + m["body_text"] for m in items))]:
            problems.append(("mail", payload, "lost", lost))
    assert not problems, problems


# --- kb-svc: article bodies, draft and published, and the anonymous public read ----------------

EDITOR = identity_headers(Principal(kind="user", id=str(uuid.uuid4()), role="editor", name="编辑"))


@pytest.fixture
async def kb_api(infra: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    async with _api("kb_svc", "KB_", infra, monkeypatch) as client:
        yield client


async def test_knowledge_base_articles_are_inert_in_every_read(kb_api: Any) -> None:
    category = (await kb_api.post("/v1/kb/categories", json={"name": "帮助", "locale": "zh-CN"}, headers=EDITOR)).json()
    section = (await kb_api.post("/v1/kb/sections", json={"category_id": category["id"], "name": "退款",
                                                          "locale": "zh-CN"}, headers=EDITOR)).json()
    problems = []
    for i, payload in enumerate(CORPUS):
        created = await kb_api.post("/v1/kb/articles", json={"section_id": section["id"], "locale": "zh-CN",
                                                             "title": f"文章 {i}", "body_html": payload},
                                    headers=EDITOR)
        assert created.status_code == 201, created.text
        article_id = created.json()["id"]
        published = await kb_api.post(f"/v1/kb/articles/{article_id}/publish", json={"locale": "zh-CN"},
                                      headers=EDITOR)
        assert published.status_code == 200, published.text
        # a second draft on top of the published text: both must be clean
        draft = await kb_api.put(f"/v1/kb/articles/{article_id}/translations/zh-CN",
                                 json={"title": f"文章 {i}", "body_html": "<p>草稿</p>" + payload},
                                 headers={**EDITOR, "If-Match": published.headers["ETag"]})
        assert draft.status_code == 200, draft.text
        editor_read = (await kb_api.get(f"/v1/kb/articles/{article_id}", headers=EDITOR)).json()
        public = await kb_api.get(f"/v1/kb/public/articles/{article_id}", params={"locale": "zh-CN"})
        assert public.status_code == 200, public.text
        bodies = [t[k] for t in editor_read["translations"] for k in ("draft_body_html", "published_body_html")]
        bodies.append(public.json()["body_html"])
        for body in bodies:
            if live := live_parts(body):
                problems.append((payload, live))
        if lost := _survives(payload, public.json()["body_html"]):
            problems.append((payload, "lost", lost))
    assert not problems, problems


# --- notify-svc: templates (admin HTML, customer values) and reply e-mails ---------------------

ADMIN = identity_headers(Principal(kind="user", id=str(uuid.uuid4()), role="admin"))


@pytest.fixture
async def notify_api(infra: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    from notify_svc.webhooks.crypto import generate_key

    monkeypatch.setenv("NOTIFY_SECRET_KEY", generate_key())
    async with _api("notify_svc", "NOTIFY_", infra, monkeypatch) as client:
        yield client


async def test_notification_templates_render_inert_html(notify_api: Any) -> None:
    problems = []
    for payload in CORPUS:
        # the payload as the admin's own markup, and as a customer's subject and name
        preview = await notify_api.post("/v1/notification-templates/preview", headers=ADMIN, json={
            "key": "ticket_received", "language": "zh-CN",
            "body_html": "<p>您好 {{ requester.name }}：{{ ticket.subject }}</p>" + payload,
            "sample": {"ticket": {"subject": payload}, "requester": {"name": payload}}})
        assert preview.status_code == 200, preview.text
        html = preview.json()["body_html"]
        if live := live_parts(html):
            problems.append((payload, live))
        if lost := [w for w in chinese_of(payload) if w not in html]:  # escaped values keep all of it
            problems.append((payload, "lost", lost))
    saved = await notify_api.put("/v1/notification-templates/ticket_received/en", headers=ADMIN, json={
        "subject": "Re: {{ ticket.subject }}", "body_text": "Hi",
        "body_html": '<p style="color:#888;width:expression(alert(1))" onclick="alert(1)">Hi</p>' + CORPUS[0]})
    assert saved.status_code in (200, 201), saved.text
    stored = await notify_api.post("/v1/notification-templates/preview", headers=ADMIN,
                                   json={"key": "ticket_received", "language": "en"})
    assert stored.status_code == 200, stored.text
    assert not live_parts(stored.json()["body_html"]) and 'style="color:#888"' in stored.json()["body_html"]
    assert not problems, problems


@pytest.mark.parametrize("payload", CORPUS[:20] + CORPUS[-5:])
def test_reply_emails_escape_the_reply_text(payload: str) -> None:
    from notify_svc.channels.email import text_to_html

    html = text_to_html(f"您好，\n\n{payload}\n谢谢")
    assert not live_parts(html), html
    assert all(w in html for w in chinese_of(payload))


# --- the pages customers open: a refused comment is shown again, escaped -----------------------

@pytest.mark.parametrize("payload", CORPUS)
def test_survey_and_confirmation_pages_escape_what_the_customer_wrote(payload: str) -> None:
    """The pages have a form and a style element of their own; what the customer wrote (and the
    ticket's subject) must add nothing live to them."""
    from customer_svc.surveys import page as survey_page
    from ticket_svc.confirmations import page as confirmation_page

    def pages(text: str) -> list[str]:
        return [survey_page.form(survey_page.FormView(kind="csat", language="zh-CN", number=7, subject=text,
                                                      error="请选择", comment=text)),
                confirmation_page.form(confirmation_page.View(language="zh-CN", number=7, subject=text,
                                                              error="请选择", comment=text))]

    for plain, html in zip(pages("退款申请"), pages(payload), strict=True):
        assert live_parts(html) == live_parts(plain), html
        assert all(w in html for w in chinese_of(payload))
