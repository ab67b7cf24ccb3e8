"""The pure rules of deflection, table-driven and with hypothesis: the query built from a form,
the question's hash, the token buckets, outcomes and the report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kb_svc.deflection import rules
from kb_svc.search.text import MAX_QUERY_CHARS, MAX_QUERY_TERMS


@pytest.mark.parametrize(("subject", "description", "subject_query", "in_full", "not_in_full"), [
    ("无法申请退款", "我上周买的耳机想退款，但是退款按钮是灰色的", "无法 申请 退款", ["耳机", "按钮"], ["我", "的", "退款 退款"]),
    ("Refund policy", "I want a refund for my orders, the order was placed last week", "refund policy",
     ["orders"], ["the", "want a", "refund refund"]),
    ("How do I reset my password?", "", "reset password", [], ["how", "do"]),
    ("请问怎么开发票", "Invoice needed for order 12345", "开发票", ["invoice", "12345"], ["请问", "怎么"]),
    ("!!!", "", "", [], []),
])
def test_query_from_a_form(subject, description, subject_query, in_full, not_in_full):
    query = rules.build_query(subject, description)
    assert query.subject == subject_query
    assert query.full.startswith(query.subject)
    words = query.full.split()
    for word in in_full:
        assert word in words, (word, query.full)
    for text in not_in_full:
        assert text not in words and f" {text} " not in f" {query.full} ", (text, query.full)


def test_the_description_s_most_frequent_words_come_first():
    words = rules.salient_words("printer jams. The printer jammed again; paper printers everywhere, paper")
    assert words[:3] == ["printer", "jams", "paper"]  # printer x3 (printers), jam x2, paper x2


@given(st.text(max_size=600), st.text(max_size=3000))
@settings(max_examples=60, deadline=None)
def test_queries_are_bounded(subject, description):
    query = rules.build_query(subject, description)
    for q in (query.subject, query.full):
        assert len(q) <= MAX_QUERY_CHARS and len(q.split()) <= MAX_QUERY_TERMS
    assert query.full.startswith(query.subject)


@given(st.text(max_size=200), st.text(max_size=200), st.sampled_from([None, "zh-CN", "en"]))
@settings(max_examples=60, deadline=None)
def test_the_hash_hides_the_question_and_ignores_case_and_spacing(subject, description, language):
    h = rules.query_hash(subject, description, language)
    assert len(h) == 64 and int(h, 16) >= 0
    assert h == rules.query_hash(f"  {subject.upper()} ", description + "  ", language)
    if subject.strip():
        assert subject.strip() not in h or len(subject.strip()) < 3


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_token_buckets():
    clock = Clock()
    buckets = rules.TokenBuckets(rate=0.5, burst=2, max_keys=2, clock=clock)
    assert buckets.take("a") == 0 and buckets.take("a") == 0
    assert buckets.take("a") == pytest.approx(2.0)  # one token back after 2 s
    assert rules.retry_after(buckets.take("a")) == "2"
    assert buckets.take("b") == 0  # addresses are separate
    clock.now = 2.0
    assert buckets.take("a") == 0
    buckets.take("c")  # a third address: the least recently seen (b) is forgotten
    assert set(buckets._buckets) == {"a", "c"}
    with pytest.raises(ValueError):
        rules.TokenBuckets(rate=0, burst=1)


@given(st.lists(st.floats(0, 10), min_size=1, max_size=40))
def test_a_bucket_never_allows_more_than_burst_plus_rate_times_time(gaps):
    clock = Clock()
    buckets = rules.TokenBuckets(rate=1.0, burst=3, clock=clock)
    allowed = 0
    for gap in gaps:
        clock.now += gap
        if buckets.take("x") == 0:
            allowed += 1
    assert allowed <= 3 + clock.now * 1.0 + 1e-9


def test_outcomes_and_windows():
    t0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    window = timedelta(minutes=60)
    assert rules.outcome_after_window(viewed=True) == "deflected"
    assert rules.outcome_after_window(viewed=False) == "abandoned"
    assert not rules.window_closed(t0, t0 + timedelta(minutes=59), window)
    assert rules.window_closed(t0, t0 + window, window)
    assert rules.within_window(t0, t0 + window, window)
    assert not rules.within_window(t0, t0 + window + timedelta(microseconds=1), window)


@pytest.mark.parametrize(("counts", "rate", "pending"), [
    ((10, 6, 3, 2, 1), 0.5, 4),     # 3 deflected of 6 decided
    ((4, 0, 0, 0, 0), None, 4),     # nothing decided yet
    ((5, 5, 5, 0, 0), 1.0, 0),
    ((3, 0, 0, 3, 0), 0.0, 0),
])
def test_report(counts, rate, pending):
    suggestions, viewed, deflected, followed, abandoned = counts
    report = rules.report(suggestions=suggestions, viewed=viewed, deflected=deflected, tickets_followed=followed,
                          abandoned=abandoned)
    assert report["self_service_rate"] == rate and report["pending"] == pending
