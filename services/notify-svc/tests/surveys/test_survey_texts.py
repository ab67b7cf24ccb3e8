"""Survey invitations, pure: the words in both languages, where each one goes, when it cannot go,
and the e-mail the adapter builds from it (real MIME, no server)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.header import decode_header, make_header
from email.policy import default

import pytest

from helpdesk_common.events import Requester

from notify_svc.channels.base import OutboundMessage
from notify_svc.channels.email import build_message
from notify_svc.surveys import service, texts

LINK = "https://help.example.com/v1/surveys/eyJzIjoiMSJ9.c2ln?x=1&y=<2>"
EXPIRES = datetime(2026, 12, 9, 8, 30, tzinfo=UTC)


@pytest.mark.parametrize(("kind", "language", "subject", "words"), [
    ("csat", "en", "How did we do? [#42]", ["#42 \"Printer offline\" has been solved", "1 (very dissatisfied)"]),
    ("csat", "zh-CN", "您对本次服务满意吗？[#42]", ["工单 #42「Printer offline」已解决", "1 = 非常不满意"]),
    ("csat", "zh_TW", "您对本次服务满意吗？[#42]", ["已解决"]),
    ("csat", None, "How did we do? [#42]", ["has been solved"]),
    ("nps", "en", "How likely are you to recommend us?", ["recommend us to a friend or colleague, 0-10"]),
    ("nps", "zh-CN", "您向朋友推荐我们的可能性有多大？", ["0-10 打分"]),
])
def test_words_in_both_languages_with_the_full_link(kind, language, subject, words) -> None:
    made = texts.invitation(kind=kind, language=language, link=LINK, expires_at=EXPIRES, name="王芳",
                            number=42 if kind == "csat" else None, subject="Printer offline")
    assert made.subject == subject
    assert LINK in made.body_text.splitlines()  # the full URL on a line of its own: clients make it clickable
    for word in words:
        assert word in made.body_text
    assert "2026-12-09 08:30 UTC" in made.body_text
    assert "王芳" in made.body_text
    # HTML: the link escaped in the href and as text, nothing of it raw
    escaped = "https://help.example.com/v1/surveys/eyJzIjoiMSJ9.c2ln?x=1&amp;y=&lt;2&gt;"
    assert f'href="{escaped}"' in made.body_html and "<2>" not in made.body_html


def test_customer_text_is_escaped_in_html_and_kept_on_one_line() -> None:
    made = texts.invitation(kind="csat", language="en", link=LINK, expires_at=EXPIRES, name="<b>Eve</b>\r\nBcc: x",
                            number=7, subject="<script>alert(1)</script>\nline two" + "x" * 300)
    assert "<script>" not in made.body_html and "&lt;script&gt;" in made.body_html
    assert "<b>Eve" not in made.body_html
    assert "Hello <b>Eve</b> Bcc: x," in made.body_text
    quoted = made.body_text.split('"')[1]
    assert len(quoted) == texts.SUBJECT_QUOTE_MAX and quoted.endswith("…") and "\n" not in quoted


@pytest.mark.parametrize(("channel", "recipient", "route", "expected"), [
    ("email", Requester(email="li@example.com"), {"to": ["li@example.com"], "from": "help@x.test"},
     ("email", {"to": ["li@example.com"], "from": "help@x.test"})),
    ("email", Requester(email="li@example.com"), {}, ("email", {"to": ["li@example.com"]})),
    ("web", Requester(email="li@example.com"), {}, ("email", {"to": ["li@example.com"]})),
    # e-mail first whenever there is an address, whatever channel the ticket came on
    ("wechat", Requester(email="li@example.com", wechat_openid="o1"), {"openid": "o1"},
     ("email", {"to": ["li@example.com"]})),
    ("wechat", Requester(), {"openid": "o1", "app_id": "wx1"}, ("wechat", {"openid": "o1", "app_id": "wx1"})),
    ("wechat", Requester(wechat_openid="o2"), {}, ("wechat", {"openid": "o2"})),
    ("wecom", Requester(), {"external_userid": "wm1", "open_kfid": "kf1"},
     ("wecom", {"external_userid": "wm1", "open_kfid": "kf1"})),
])
def test_plan_reaches_the_customer(channel, recipient, route, expected) -> None:
    target = service.plan(channel, recipient=recipient, route=route)
    assert (target.channel, target.route) == expected and target.undeliverable is None


@pytest.mark.parametrize(("channel", "recipient", "route"), [
    ("email", Requester(), {}),
    ("wechat", Requester(), {}),
    ("wecom", Requester(), {"open_kfid": "kf1"}),
    ("dingtalk", Requester(external_id="dingtalk:u1"), {"sender_staff_id": "u1"}),
    ("phone", Requester(phone="+8613800138000"), {}),
])
def test_plan_says_why_it_cannot(channel, recipient, route) -> None:
    target = service.plan(channel, recipient=recipient, route=route)
    assert target.channel == channel and target.undeliverable and "no e-mail address" in target.undeliverable


def test_link_problems_never_quote_the_link() -> None:
    now = datetime.now(UTC)
    assert service.link_problem(LINK, expires_at=now + timedelta(days=1), now=now) is None
    for link, expires in (("/v1/surveys/abc", now + timedelta(days=1)), ("javascript:x", now + timedelta(days=1)),
                          (LINK, now)):
        reason = service.link_problem(link, expires_at=expires, now=now)
        assert reason and "surveys/" not in reason and "abc" not in reason


def test_the_email_carries_subject_parts_and_auto_submitted() -> None:
    made = texts.invitation(kind="csat", language="zh-CN", link=LINK, expires_at=EXPIRES, name="王芳",
                            number=42, subject="打印机坏了")
    message = OutboundMessage(delivery_id=uuid.uuid4(), channel="email", route={"to": ["wang@example.com"]},
                              body_text=made.body_text, body_html=made.body_html, subject=made.subject,
                              language="zh-CN", automatic=True, extra={"number": 42})
    mime = message_from_bytes(build_message(message, from_address="support@help.example.com").as_bytes(),
                              policy=default)
    assert str(make_header(decode_header(mime["Subject"]))) == "您对本次服务满意吗？[#42]"
    assert mime["Auto-Submitted"] == "auto-generated"
    text_part = mime.get_body(("plain",)).get_content()
    html_part = mime.get_body(("html",)).get_content()
    assert LINK in text_part and "打印机坏了" in text_part
    assert 'href="https://help.example.com/v1/surveys/eyJzIjoiMSJ9.c2ln?x=1&amp;y=&lt;2&gt;"' in html_part
