"""Templates: built-ins render in zh-CN and en, the sandbox refuses what a template must not do,
and the language falls back from the customer's to the tenant default to English."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from notify_svc.notifications import render
from notify_svc.notifications.catalogue import BUILTIN, BUILTIN_LANGUAGES, KEYS, Template


@pytest.mark.parametrize("key", list(KEYS))
@pytest.mark.parametrize("language", BUILTIN_LANGUAGES)
def test_every_builtin_renders_in_both_languages(key: str, language: str) -> None:
    assert render.validate(BUILTIN[(key, language)], language=language) == []
    out = render.render(BUILTIN[(key, language)], render.sample_context(language=language))
    assert "10042" in out.subject and "\n" not in out.subject
    assert "10042" in out.body_text and out.body_html and "10042" in out.body_html


def test_ticket_received_in_chinese_and_english() -> None:
    zh = render.render(BUILTIN[("ticket_received", "zh-CN")], render.sample_context(language="zh-CN"))
    assert zh.subject == "[#10042] 我们已收到您的请求：打印机无法连接 / Printer offline"
    assert zh.body_text.startswith("王芳，\n\n我们已收到您的请求，工单编号为 #10042。")
    assert "直接回复此邮件" in zh.body_text  # the reply hint in the message's language
    en = render.render(BUILTIN[("ticket_received", "en")], render.sample_context(language="en"))
    assert en.subject == "[#10042] We received your request: 打印机无法连接 / Printer offline"
    assert en.body_text.startswith("Hello 王芳,\n\nWe received your request and opened ticket #10042.")
    solved = render.render(BUILTIN[("ticket_solved", "zh-CN")], render.sample_context(language="zh-CN"))
    assert "直接回复即可重新打开工单" in solved.body_text


def test_html_is_escaped_text_is_not_and_the_subject_is_one_line() -> None:
    ctx = render.sample_context({"ticket": {"subject": "<script>alert(1)</script>\r\nBcc: x@evil.example"},
                                 "requester": {"name": "A & B"}})
    out = render.render(BUILTIN[("ticket_received", "en")], ctx)
    assert "<script>" not in out.body_html and "&lt;script&gt;" in out.body_html and "A &amp; B" in out.body_html
    assert "<script>alert(1)</script>" in out.body_text
    assert "\n" not in out.subject and "\r" not in out.subject


def test_null_values_render_as_nothing() -> None:
    ctx = render.sample_context({"agent": {"name": None}, "portal_url": None})
    assert render.render_part("body_text", "[{{ agent.name }}][{{ portal_url }}]", ctx) == "[][]"


@pytest.mark.parametrize("source, message", [
    ("{{ ''.__class__ }}", "only the fields of the documented variables"),
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "not allowed"),
    ("{{ ticket.__class__ }}", "has no field '__class__'"),
    ("{{ ticket.items }}", "has no field 'items'"),
    ("{{ tickt.number }}", "'tickt' is undefined"),
    ("{{ ticket.subject.upper() }}", "calls: not allowed"),
    ("{{ lipsum() }}", "calls: not allowed"),
    ("{% for i in range(10) %}x{% endfor %}", "loops"),
    ("{% set a = ticket.subject ~ ticket.subject %}{{ a }}", "{% set %}"),
    ("{{ 'x' * 1000000000 }}", "'*'"),
    ("{{ ticket.subject|center(1000000000) }}", "No filter named 'center'"),
    ("{{ ticket.subject|join('x') }}", "No filter named 'join'"),
    ("{% autoescape false %}{{ ticket.subject }}{% endautoescape %}", "{% autoescape %}"),
    ("{% include 'x' %}", "{% include %}"),
    ("{{ ticket.number ", "unexpected end of template"),
])
def test_the_sandbox_refuses(source: str, message: str) -> None:
    problems = render.check_source("body_html", source)
    assert problems and message in problems[0].message, problems


def test_an_undefined_name_in_a_branch_the_sample_does_not_take_is_still_found_with_its_line() -> None:
    template = Template("ok {{ ticket.number }}", "line one\n{% if ticket.priority == 'urgent' %}\n{{ ticket.sla_due }}\n{% endif %}",
                        "")
    problems = render.validate(template)
    assert [p.as_error() for p in problems] == [{
        "field": "body.body_text", "code": "template_error",
        "message": "line 3: 'ticket' has no field 'sla_due' (fields: channel, id, number, priority, status, subject, url)"}]


def test_the_sandbox_holds_at_render_time_too() -> None:
    """Should the static check miss something, the environment itself refuses attributes."""
    env = render._env("body_text")
    with pytest.raises(Exception) as caught:
        env.from_string("{{ ''.__class__ }}").render()
    assert "unsafe" in str(caught.value)
    with pytest.raises(Exception):
        env.from_string("{{ x.y }}").render(x={})


def test_the_output_is_bounded() -> None:
    big = "x" * 30_000
    with pytest.raises(render.RenderError) as caught:
        render.render_part("body_text", "{{ ticket.subject }}" * 3, render.sample_context({"ticket": {"subject": big}}))
    assert "longer than 65536" in caught.value.problems[0].message


@pytest.mark.parametrize("wanted, available, default, chosen", [
    ("zh-CN", ["en", "zh-CN"], "en", "zh-CN"),
    ("zh_cn", ["en", "zh-CN"], "en", "zh-CN"),
    ("zh", ["en", "zh-CN"], "en", "zh-CN"),
    ("zh-TW", ["en", "zh-CN", "zh-TW"], "en", "zh-TW"),
    ("zh-Hans-CN", ["en", "zh-CN"], "en", "zh-CN"),
    ("en-US", ["en", "zh-CN"], "zh-CN", "en"),
    ("fr", ["en", "zh-CN"], "zh-CN", "zh-CN"),   # no French: the tenant default
    ("fr", ["en", "zh-CN"], "de", "en"),         # nor the default: English
    (None, ["en", "zh-CN"], "zh-CN", "zh-CN"),
    (None, ["en", "zh-CN"], None, "en"),
    ("ja", ["ja", "en"], "en", "ja"),            # an admin's extra language
    ("ja", ["zh-CN"], "de", "zh-CN"),            # whatever there is
    ("!!", ["en", "zh-CN"], "zh-CN", "zh-CN"),
])
def test_language_fallback(wanted, available, default, chosen) -> None:
    assert render.choose_language(wanted, available, default) == chosen


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.text(max_size=60))
def test_any_subject_and_name_render_and_the_subject_stays_one_line(subject: str, name: str) -> None:
    ctx = render.sample_context({"ticket": {"subject": subject}, "requester": {"name": name}})
    for language in BUILTIN_LANGUAGES:
        out = render.render(BUILTIN[("ticket_received", language)], ctx)
        assert "\n" not in out.subject and "\r" not in out.subject
        assert "<" not in (out.body_html or "").replace("<p", "").replace("</p", "").replace("<br", "").replace(
            "<strong", "").replace("</strong", "").replace("<a ", "").replace("</a", "")


@pytest.mark.parametrize("source", [
    "{{ " + "(" * 300 + "ticket.subject" + ")" * 300 + " }}",
    "{{ ticket.subject" + "|upper" * 5000 + " }}",
    "{% if ticket.number %}" * 100 + "x" + "{% endif %}" * 100,
])
def test_deep_nesting_is_a_problem_not_a_crash(source: str) -> None:
    assert "nested too deeply" in render.check_source("body_text", source)[0].message


_PIECES = st.sampled_from([
    "{{ ticket.subject }}", "{{ ticket.number }}", "{{ requester.name|default('x', true) }}", "{% if ticket.priority == 'high' %}",
    "{% else %}", "{% endif %}", "{{ sla.due_at }}", "{{", "}}", "{%", "%}", "{{ x }}", "{{ ticket.zz }}", "|upper", "(",
    ")", "~", "'", "\n", "text ", "中文", "{{ ''.__class__ }}", "{% for a in b %}", "{% endfor %}", "{{ 1 * 2 }}",
    "{# c #}", "{{ ticket['number'] }}", "{{ agent.name|truncate(3) }}", "{% raw %}", "{% endraw %}",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=12).map("".join), st.text(max_size=40))
def test_any_source_is_either_refused_with_problems_or_renders(source: str, subject: str) -> None:
    """Never an exception other than RenderError, whatever an admin types."""
    for part in render.PARTS:
        try:
            render.render_part(part, source, render.sample_context({"ticket": {"subject": subject}}))
        except render.RenderError as exc:
            assert exc.problems and all(p.part == part for p in exc.problems)
