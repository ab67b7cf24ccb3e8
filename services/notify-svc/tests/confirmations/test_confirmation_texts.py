"""The words of a confirmation request: in the ticket's language, the subject threading back
(``[#number]`` and the ticket's subject), the reply word and the link, and the expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from notify_svc.confirmations import service, texts
from helpdesk_common import events

LINK = "https://help.example.com/v1/confirmations/tok-abc?x=1&y=<2>"
EXPIRES = datetime(2026, 12, 3, 22, 30, tzinfo=timezone(timedelta(hours=8)))


@pytest.mark.parametrize("language, subject, words", [
    ("zh-CN", "[#42] 请确认问题是否已解决：打印机坏了", ["王芳，您好：", "工单 #42「打印机坏了」", "回复“确认”", "“未解决”",
                                                      "请在 2026-12-03 14:30 UTC 前答复"]),
    ("zh-Hant-TW", "[#42] 请确认问题是否已解决：打印机坏了", ["回复“确认”"]),
    ("en", "[#42] Please confirm your request is resolved: 打印机坏了",
     ["Hello 王芳,", "request #42 \"打印机坏了\"", "Reply \"confirm\"", "\"Not resolved\"",
      "Please answer by 2026-12-03 14:30 UTC"]),
    (None, "[#42] Please confirm your request is resolved: 打印机坏了", ["Reply \"confirm\""]),
])
def test_the_request_in_the_tickets_language(language, subject, words) -> None:
    words_of = texts.request(language=language, link=LINK, expires_at=EXPIRES, name="王芳", number=42,
                             subject="打印机坏了")
    assert words_of.subject == subject
    for word in words:
        assert word in words_of.body_text
    assert f"\n\n{LINK}\n\n" in words_of.body_text  # the full link on a line of its own
    assert 'href="https://help.example.com/v1/confirmations/tok-abc?x=1&amp;y=&lt;2&gt;"' in words_of.body_html
    assert "<2>" not in words_of.body_html


def test_a_long_or_multiline_subject_is_one_short_line() -> None:
    words = texts.request(language="en", link=LINK, expires_at=EXPIRES, number=7, subject="a\r\nb " + "x" * 300)
    assert "\n" not in words.subject and len(words.subject) < 200 and words.subject.startswith("[#7] ")
    assert texts.request(language="en", link=LINK, expires_at=EXPIRES).subject == "Please confirm your request is resolved"


@pytest.mark.parametrize("channel, recipient, route, expected", [
    ("email", events.Requester(email="a@x.com"), {"to": ["a@x.com"], "from": "help@acme.test"},
     ("email", {"to": ["a@x.com"], "from": "help@acme.test"})),
    ("dingtalk", events.Requester(email="a@x.com"), {"session_webhook": "https://oapi/x"}, ("email", {"to": ["a@x.com"]})),
    ("wechat", events.Requester(), {"openid": "o-1"}, ("wechat", {"openid": "o-1"})),
    ("dingtalk", events.Requester(), {"session_webhook": "https://oapi.dingtalk.com/robot/sendBySession?s=1",
                                      "sender_staff_id": "s1", "userid": "member"},
     ("dingtalk", {"session_webhook": "https://oapi.dingtalk.com/robot/sendBySession?s=1", "sender_staff_id": "s1"})),
    ("chat", events.Requester(), {"conversation_key": "c-1", "other": 1}, ("chat", {"conversation_key": "c-1"})),
])
def test_where_it_goes(channel, recipient, route, expected) -> None:
    target = service.plan(channel, recipient=recipient, route=route)
    assert target.undeliverable is None and (target.channel, target.route) == expected


def test_nowhere_to_go_says_what_was_missing() -> None:
    target = service.plan("chat", recipient=events.Requester(name="x"), route={})
    assert target.undeliverable and "conversation key" in target.undeliverable


def test_threading_takes_the_replies_ids_for_email_only() -> None:
    route = {"in_reply_to": "<c2@mail.example.com>", "references": ["<c1@mail.example.com>", 5, "<c2@mail.example.com>"]}
    assert service.threading("email", route) == {"in_reply_to": "<c2@mail.example.com>",
                                                 "references": ["<c1@mail.example.com>", "<c2@mail.example.com>"]}
    assert service.threading("email", {}) == {"in_reply_to": None, "references": []}
    assert service.threading("wechat", route) == {}
