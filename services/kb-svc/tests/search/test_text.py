"""Search text processing, without a database: runs, segmentation, queries, corrections,
snippets."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kb_svc.search import text


@pytest.mark.parametrize(("value", "expected"), [
    ("refund policy", [("en", "refund policy")]),
    ("如何申请退款", [("zh", "如何申请退款")]),
    ("iPhone 保修", [("en", "iPhone"), ("zh", "保修")]),
    ("退款 refund 流程", [("zh", "退款"), ("en", "refund"), ("zh", "流程")]),
    ("，。！", []),
    ("", []),
    ("订单号：A-1234。", [("zh", "订单号"), ("en", "：A-1234。")]),
])
def test_split_runs(value, expected):
    runs = text.split_runs(value)
    assert [(r.language, r.text) for r in runs] == expected
    for run in runs:
        assert value[run.start:run.start + len(run.text)] == run.text


@pytest.mark.parametrize(("value", "expected"), [
    ("how do I get a refund", "en"),
    ("如何申请退款", "zh"),
    ("iPhone 保修", "zh"),
    ("My iPhone 屏幕 is broken and I want a refund", "en"),
    ("123 !!", "en"),
    ("？！", None),
])
def test_detect_language(value, expected):
    assert text.detect_language(value) == expected


@pytest.mark.parametrize(("run", "must_contain"), [
    ("如何申请退款", {"申请", "退款"}),
    ("请提供订单号", {"订单号"}),
    ("优惠券不能使用", {"优惠券"}),
    ("电子发票怎么开", {"电子发票", "发票"}),
    ("我想退钱", {"退钱"}),
    ("快递一直没到", {"快递"}),
])
def test_chinese_terms_keep_product_words_whole(run, must_contain):
    terms = text.chinese_terms(run)
    assert must_contain <= set(terms)
    assert not set(terms) & text.ZH_STOPWORDS
    assert all(len(t) >= 2 for t in terms)


def test_segmenter_loads_once_under_concurrent_first_use():
    found = []
    threads = [threading.Thread(target=lambda: found.append(text.segmenter())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(s) for s in found}) == 1
    assert text.segmenter_load_seconds is not None and text.segmenter_load_seconds > 0


@pytest.mark.parametrize(("run", "expected"), [
    ("退款", ["退款"]),
    ("退款流程", ["退款", "款流", "流程"]),
    ("钱", ["钱"]),
    ("", []),
])
def test_bigrams(run, expected):
    assert text.bigrams(run) == expected


def test_analyze_splits_a_mixed_field():
    terms = text.analyze("iPhone 保修政策 and refunds")
    assert terms.latin == "iPhone and refunds"
    assert "保修" in terms.chinese and "政策" in terms.chinese
    assert "保修" in terms.bigrams and "修政" in terms.bigrams
    assert terms.en_words == {"iphone", "refunds"}
    assert {"保修", "政策"} <= terms.zh_words


@pytest.mark.parametrize(("q", "sources"), [
    ("退款流程", [("zh", "退款"), ("zh", "流程")]),
    ("如何申请退款", [("zh", "申请"), ("zh", "退款")]),
    ("refund policy", [("en", "refund"), ("en", "policy")]),
    ("How do I sign in?", [("en", "sign in")]),
    ("I want my money back", [("en", "want"), ("en", "money back")]),
    ("iPhone 保修", [("en", "iphone"), ("zh", "保修")]),
    ("订单号在哪里看", [("zh", "订单号")]),
    ("refund refund REFUND", [("en", "refund")]),
    ("the of and", []),
    ("的了吗", []),
])
def test_parse_query(q, sources):
    assert [(t.language, t.source) for t in text.parse_query(q)] == sources


@pytest.mark.parametrize(("q", "synonym"), [
    ("退钱", "退款"),
    ("退款", "退费"),
    ("开票", "发票"),
    ("money back", "refund"),
    ("reimburse", "refund"),
    ("log in", "login"),
    ("passcode", "password"),
])
def test_synonyms_are_alternatives(q, synonym):
    (term,) = text.parse_query(q)
    assert term.alternatives[0] == term.source
    assert synonym in term.alternatives


def test_query_terms_are_bounded():
    terms = text.parse_query(" ".join(f"word{i}" for i in range(50)))
    assert len(terms) == text.MAX_QUERY_TERMS


@pytest.mark.parametrize(("a", "b", "distance"), [
    ("refund", "refund", 0),
    ("refnud", "refund", 1),
    ("pasword", "password", 1),
    ("invioce", "invoice", 1),
    ("shiping", "shipping", 1),
    ("warrnty", "warranty", 1),
    ("kitten", "sitting", 3),
    ("abc", "abcdefgh", 4),
])
def test_edit_distance(a, b, distance):
    assert text.edit_distance(a, b, limit=3) == min(distance, 4)


@given(st.text(alphabet="abcde", max_size=8), st.text(alphabet="abcde", max_size=8))
@settings(max_examples=200, deadline=None)
def test_edit_distance_laws(a, b):
    d = text.edit_distance(a, b, limit=20)
    assert d == text.edit_distance(b, a, limit=20)
    assert (d == 0) == (a == b)
    assert abs(len(a) - len(b)) <= d <= max(len(a), len(b))


@pytest.mark.parametrize(("word", "candidates", "expected"), [
    ("refnud", [("refund", 10), ("refer", 3)], ["refund"]),
    ("pasword", [("password", 4), ("passport", 9)], ["password"]),
    ("shiping", [("shipping", 2), ("shopping", 9)], ["shipping"]),
    ("recieve", [("receive", 1), ("relieve", 5)], ["relieve", "receive"]),  # both one edit: by frequency
    ("cart", [("card", 2), ("care", 3)], ["care", "card"]),
    ("cat", [("car", 9)], []),  # three letters: never corrected
    ("zzzzzz", [("refund", 10)], []),
])
def test_choose_corrections(word, candidates, expected):
    assert text.choose_corrections(word, candidates) == expected


def test_corrections_widen_a_term():
    (term,) = text.parse_query("refnud")
    fixed = text.with_corrections(term, ["refund"])
    assert fixed.alternatives[:2] == ("refnud", "refund")
    assert "money back" in fixed.alternatives


@pytest.mark.parametrize(("q", "unknown", "expected"), [
    ("refund", set(), "'refund' | 'money' <-> 'back' | 'reimburse' | 'reimbursement' | 'repayment'"),
    ("订单号", set(), "'订单号'"),
    ("订单号", {"订单号"}, "'订单号' | ('订单' & '单号')"),
    ("退钱", {"退钱"}, "'退钱' | '退款' | '退费' | '返款'"),  # two characters: the word is its bigram
    ("it's", set(), "'it' <-> 's'"),
])
def test_tsquery_text(q, unknown, expected):
    (term,) = text.parse_query(q) or [text.QueryTerm("en", q, (q,))]
    assert text.tsquery_text(term, unknown) == expected


def test_tsquery_text_quotes_what_to_tsquery_would_parse():
    term = text.QueryTerm("en", "x", ("a'b", "c\\d", "e|f&g"))
    assert text.tsquery_text(term) == "'a' <-> 'b' | 'c' <-> 'd' | 'e' <-> 'f' <-> 'g'"


@pytest.mark.parametrize(("body", "words", "expected"), [
    ("Refund policy: refunds take 7 days.", ["refund", "polici"],
     "<mark>Refund</mark> <mark>policy</mark>: <mark>refunds</mark> take 7 days."),
    ("点击申请退款即可。", ["退款"], "点击申请<mark>退款</mark>即可。"),
    ("<script>alert(1)</script> refund", ["refund"], "&lt;script&gt;alert(1)&lt;/script&gt; <mark>refund</mark>"),
    ("nothing here", ["refund"], "nothing here"),
    ("a & b <i>", [], "a &amp; b &lt;i&gt;"),
])
def test_snippet_marks_and_escapes(body, words, expected):
    assert text.snippet(body, words) == expected


def test_snippet_picks_the_window_with_the_matches():
    body = "Intro words. " * 40 + "Our refund policy explains timelines. " + "Filler text. " * 40
    out = text.snippet(body, ["refund", "polici"], width=100)
    assert out.startswith("…") and out.endswith("…")
    assert "<mark>refund</mark> <mark>policy</mark>" in out
    assert len(out.replace("<mark>", "").replace("</mark>", "")) <= 102


@given(st.text(max_size=300), st.lists(st.text(min_size=1, max_size=5), max_size=4))
@settings(max_examples=200, deadline=None)
def test_snippet_never_lets_markup_through(body, words):
    out = text.snippet(body, words)
    stripped = out.replace("<mark>", "").replace("</mark>", "")
    assert "<" not in stripped and ">" not in stripped
    assert out.count("<mark>") == out.count("</mark>")
