"""The built-in agent templates (zh-CN and en) as the markdown a WeCom application message and a
DingTalk work notification carry: the subject in bold, the body's lines, the ticket's address as a
link, everything within one message, and a customer's markup shown as text. Pure: no database."""

from __future__ import annotations

import re

import pytest

from notify_svc.channels import markdown as md
from notify_svc.channels.dingtalk import MARKDOWN_LINE_BREAK
from notify_svc.channels.text import utf8_len
from notify_svc.notifications import render
from notify_svc.notifications.catalogue import BUILTIN, BUILTIN_LANGUAGES, KEYS

AGENT_KEYS = [key for key, spec in KEYS.items() if spec.audience == "agent"]
URL = "https://desk.example.com/tickets/5b0b6b2e-8f7a-4c52-9d0e-2f1b9c7d4a10"
#: what a customer may put in a subject, and an agent's name
HOSTILE = {"ticket": {"subject": "[点我重置密码](https://evil.example/reset) **紧急** <font color=\"warning\">!</font>"},
           "agent": {"name": "李_娜_"}}


def _rendered(key: str, language: str, overrides=None):
    return render.render(BUILTIN[(key, language)], render.sample_context(overrides, language=language))


@pytest.mark.parametrize("language", BUILTIN_LANGUAGES)
@pytest.mark.parametrize("key", AGENT_KEYS)
@pytest.mark.parametrize("line_break", ["\n", MARKDOWN_LINE_BREAK], ids=["wecom", "dingtalk"])
def test_builtin_agent_templates_read_well_as_markdown(key, language, line_break):
    rendered = _rendered(key, language)
    out = md.notification_markdown(rendered.subject, rendered.body_text, line_break=line_break)
    lines = out.split(line_break)
    assert lines[0] == f"**{rendered.subject}**"  # "[#10042] ..." needs no escaping
    assert lines[1].strip() == ""
    assert f"[{URL}]({URL})" in lines  # the ticket's address, clickable, on its own line
    assert utf8_len(out) <= 2048  # one message on both clients
    assert "{{" not in out and "\\" not in out  # nothing to escape in the sample: no stray backslash
    if language == "zh-CN":
        assert "工单" in out and "打印机无法连接" in out
    else:
        assert "ticket" in out.lower() and "Printer offline" in out
    if key.startswith("sla") or key == "escalation":
        assert "first_response" in out  # a single underscore stays as it is


@pytest.mark.parametrize("language", BUILTIN_LANGUAGES)
@pytest.mark.parametrize("key", AGENT_KEYS)
def test_customer_markup_in_a_template_shows_as_text(key, language):
    rendered = _rendered(key, language, HOSTILE)
    out = md.notification_markdown(rendered.subject, rendered.body_text)
    assert "<font" not in out and "&lt;font" in out
    assert "\\[点我重置密码\\](" in out  # the customer's link is no link...
    assert "[https://evil.example/reset](https://evil.example/reset)" in out  # its address, as itself
    assert "\\*\\*紧急\\*\\*" in out
    assert not re.search(r"(?<!\\)_", out.replace(URL, "")), out  # two underscores: both escaped


def test_dingtalk_title_of_every_builtin_is_its_subject():
    for key in AGENT_KEYS:
        for language in BUILTIN_LANGUAGES:
            rendered = _rendered(key, language)
            assert md.plain_title(rendered.subject) == rendered.subject
