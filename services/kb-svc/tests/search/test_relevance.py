"""Relevance on the labelled set: ~60 help-center articles (Chinese, English, mixed) and 50+
queries with the articles that answer them. Scores are printed in the terminal summary; the
floors are set a little under what the ranking measured when it was written (see docs/kb.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb_svc.search import relevance, service

SET = relevance.load_set(Path(__file__).with_name("relevance_set.json"))

#: measured: see docs/kb.md "Search"; a drop below these is a regression
PRECISION_RATIO_FLOOR = 0.90
MRR_FLOOR = 0.85


def test_the_set_is_big_enough_and_consistent():
    slugs = {a["slug"] for a in SET["articles"]}
    queries = SET["queries"]
    chinese = [q for q in queries if any("\u4e00" <= ch <= "\u9fff" for ch in q["q"])]
    assert len(SET["articles"]) >= 60 and len(queries) >= 40
    assert len(chinese) >= 20 and len(queries) - len(chinese) >= 20
    assert all(set(q["relevant"]) <= slugs and q["relevant"] for q in queries)


@pytest.fixture
async def indexed(library):
    keys = {}
    for article in SET["articles"]:
        article_id = await library.publish(title=article["title"], body=article["body"], locale=article["locale"],
                                           labels=article["labels"])
        keys[article_id] = article["slug"]
    return keys


async def test_precision_at_5_on_the_labelled_set(db, indexed, report):
    results = {}
    async with db.connect() as conn:
        for query in SET["queries"]:
            page = await service.search(conn, service.SearchRequest(q=query["q"], visibilities=("public",), limit=5))
            results[query["q"]] = [indexed[item["id"]] for item in page["items"]]
    scores = relevance.evaluate(results, {q["q"]: q["relevant"] for q in SET["queries"]})
    section = "kb-svc search relevance (tests/search/relevance_set.json)"  # in the run's summary
    report(scores.line(), section=section)
    report(f"misses: {list(scores.misses)}", section=section)
    assert scores.precision_ratio >= PRECISION_RATIO_FLOOR, scores
    assert scores.mrr >= MRR_FLOOR, scores
    # the issue's own examples, first place
    assert results["退款流程"][0] == "zh-apply-refund"
    assert results["refund policy"][0] == "en-refund-policy"


@pytest.mark.parametrize(("results", "expected"), [
    ({"a": ["x", "y"]}, (0.2, 0.2, 1.0, 1.0, 1.0)),
    ({"a": ["y", "x"]}, (0.2, 0.2, 1.0, 1.0, 0.5)),
    ({"a": ["y", "z", "w", "v", "u", "x"]}, (0.0, 0.2, 0.0, 0.0, 1 / 6)),
    ({}, (0.0, 0.2, 0.0, 0.0, 0.0)),
])
def test_evaluate_one_query(results, expected):
    scores = relevance.evaluate(results, {"a": ["x"]})
    assert (scores.precision_at_k, scores.achievable_precision_at_k, scores.precision_ratio, scores.recall_at_k,
            scores.mrr) == pytest.approx(expected)


def test_evaluate_averages_over_queries_and_lists_misses():
    scores = relevance.evaluate({"a": ["x", "y"], "b": ["q"]}, {"a": ["x", "y"], "b": ["z"]})
    assert scores.precision_at_k == pytest.approx((2 / 5 + 0) / 2)
    assert scores.recall_at_k == pytest.approx(0.5)
    assert scores.misses == ("b",)
    with pytest.raises(ValueError):
        relevance.evaluate({}, {})
