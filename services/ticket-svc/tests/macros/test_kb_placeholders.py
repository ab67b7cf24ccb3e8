"""Knowledge-base placeholders in macro replies, the pure part (macros/render.py): finding the
references (bounded) and filling them from reply snippets, in Chinese and English."""

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticket_svc.macros.render import MAX_KB_ARTICLES, KbRef, kb_refs, render, render_with_kb

A = uuid.UUID("6f1c1d2e-0000-4000-8000-000000000001")
B = uuid.UUID("6f1c1d2e-0000-4000-8000-000000000002")
C = uuid.UUID("6f1c1d2e-0000-4000-8000-000000000003")
URL_A = "https://help.example.com/v1/kb/public/articles/a?locale=zh-CN"
CTX = {"requester.name": "韩梅梅", "ticket.number": "42", "agent.name": "Li Lei"}


@pytest.mark.parametrize(("text", "refs"), [
    ("no placeholders {{ticket.number}}", []),
    (f"{{{{kb.article.{A}.title}}}}", [KbRef(A, None)]),
    (f"{{{{ kb.article.{A}.url }}}} {{{{kb.article.{A}.text}}}}", [KbRef(A, None)]),
    (f"{{{{kb.article.{A}.title@en}}}} {{{{kb.article.{A}.title@zh-CN}}}} {{{{kb.article.{B}.url}}}}",
     [KbRef(A, "en"), KbRef(A, "zh-CN"), KbRef(B, None)]),
    (f"{{{{kb.article.{str(A).upper()}.title}}}}", [KbRef(A, None)]),  # one article, however spelt
    # not references: unknown field, malformed id, single braces
    (f"{{{{kb.article.{A}.body}}}} {{{{kb.article.1234.title}}}} {{kb.article.{A}.title}}", []),
])
def test_references_in_order_each_once(text, refs):
    assert kb_refs(text) == refs


def test_at_most_ten_articles_and_twenty_locales_pairs():
    ids = [uuid.UUID(int=i + 1) for i in range(MAX_KB_ARTICLES + 3)]
    text = " ".join(f"{{{{kb.article.{i}.title}}}}" for i in ids)
    assert [r.article_id for r in kb_refs(text)] == ids[:MAX_KB_ARTICLES]
    locales = " ".join(f"{{{{kb.article.{A}.title@l{chr(97 + i // 26)}{chr(97 + i % 26)}}}}}" for i in range(40))
    assert len(kb_refs(locales)) == 2 * MAX_KB_ARTICLES


PUBLIC = {"title": "如何申请退款", "url": URL_A}
INTERNAL = {"title": "Refund escalation (internal)", "url": None}


@pytest.mark.parametrize(("body", "snippets", "expected", "warnings"), [
    (f"{{{{requester.name}}}}您好，请参阅 {{{{kb.article.{A}.title}}}}：{{{{kb.article.{A}.url}}}}",
     {KbRef(A, None): PUBLIC}, f"韩梅梅您好，请参阅 如何申请退款：{URL_A}", []),
    (f"See {{{{kb.article.{A}.text}}}}", {KbRef(A, None): PUBLIC}, f"See 如何申请退款: {URL_A}", []),
    # agents-only: the title, never a link, and the placeholders that wanted one are reported
    (f"See {{{{kb.article.{B}.text}}}} ({{{{kb.article.{B}.url}}}}) {{{{kb.article.{B}.title}}}}",
     {KbRef(B, None): INTERNAL}, "See Refund escalation (internal) () Refund escalation (internal)",
     [("text", B, "no_public_url"), ("url", B, "no_public_url")]),
    # kb-svc had nothing (down, unpublished, not visible): empty, reported
    (f"Ticket #{{{{ticket.number}}}}: {{{{kb.article.{C}.title@en}}}}.", {KbRef(C, "en"): None},
     "Ticket #42: .", [("title@en", C, "unavailable")]),
    (f"{{{{kb.article.{C}.url}}}}", {}, "", [("url", C, "unavailable")]),
    # the locale picks the snippet
    (f"{{{{kb.article.{A}.title@en}}}} / {{{{kb.article.{A}.title@zh-CN}}}}",
     {KbRef(A, "en"): {"title": "How to request a refund", "url": None}, KbRef(A, "zh-CN"): PUBLIC},
     "How to request a refund / 如何申请退款", []),
    # an article's title is inserted as it is, never read as a placeholder itself
    (f"{{{{kb.article.{A}.title}}}}", {KbRef(A, None): {"title": "{{agent.name}} {{ticket.number}}", "url": None}},
     "{{agent.name}} {{ticket.number}}", []),
])
def test_render_with_snippets(body, snippets, expected, warnings):
    text, got = render_with_kb(body, CTX, snippets)
    assert text == expected
    assert [(w["placeholder"], w["reason"]) for w in got] == \
        [(f"{{{{kb.article.{a}.{field}}}}}", reason) for field, a, reason in warnings]


def test_articles_past_the_bound_render_empty_with_a_warning():
    ids = [uuid.UUID(int=i + 1) for i in range(MAX_KB_ARTICLES + 1)]
    body = " ".join(f"{{{{kb.article.{i}.title}}}}" for i in ids)
    snippets = {KbRef(i, None): {"title": f"T{n}", "url": None} for n, i in enumerate(ids)}
    text, warnings = render_with_kb(body, {}, snippets)
    assert text.split(" ") == [f"T{n}" for n in range(MAX_KB_ARTICLES)] + [""]
    assert warnings == [{"placeholder": f"{{{{kb.article.{ids[-1]}.title}}}}", "reason": "too_many_articles"}]


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from("{}.@ kbarticleurltx中文-" + "0123456789abcdef"), max_size=80))
def test_without_kb_placeholders_render_with_kb_is_render(text):
    if kb_refs(text):
        return
    assert render_with_kb(text, CTX, {}) == (render(text, CTX), [])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([A, B, C]), max_size=8), st.sampled_from(["title", "url", "text"]))
def test_every_unfilled_placeholder_is_reported_once(ids, field):
    body = "|".join(f"{{{{kb.article.{i}.{field}}}}}" for i in ids)
    text, warnings = render_with_kb(body, {}, {})
    assert text == "|" * max(len(ids) - 1, 0)
    assert len(warnings) == len(ids) and {w["reason"] for w in warnings} <= {"unavailable"}
