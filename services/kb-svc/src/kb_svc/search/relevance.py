"""Measuring search relevance against a labelled query set (precision@k, recall@k, MRR).

The set (``tests/search/relevance_set.json``) names, for each query, the articles that answer
it; the test suite and the benchmark both score the ranked answers with :func:`evaluate`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

K = 5


@dataclass(frozen=True)
class Scores:
    queries: int
    precision_at_k: float  # relevant hits in the top k / k, averaged
    achievable_precision_at_k: float  # the same with a perfect ranking (few queries have k relevant articles)
    precision_ratio: float  # precision_at_k / achievable_precision_at_k
    recall_at_k: float  # relevant articles found in the top k / relevant articles
    mrr: float  # 1 / rank of the first relevant hit (0 if none in the list)
    misses: tuple[str, ...]  # queries with no relevant article in the top k

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        return (f"{self.queries} queries: P@{K} {self.precision_at_k:.3f} (achievable {self.achievable_precision_at_k:.3f}, "
                f"ratio {self.precision_ratio:.3f}), R@{K} {self.recall_at_k:.3f}, MRR {self.mrr:.3f}")


def evaluate(results: Mapping[str, Sequence[str]], relevant: Mapping[str, Sequence[str]], *, k: int = K) -> Scores:
    """Score ranked answers (query → article keys, best first) against the labels (query →
    relevant keys). Every labelled query counts, answered or not."""
    if not relevant:
        raise ValueError("no labelled queries")
    precision = achievable = recall = reciprocal = 0.0
    misses = []
    for query, wanted in relevant.items():
        wanted_set = set(wanted)
        if not wanted_set:
            raise ValueError(f"query {query!r} has no relevant article")
        ranked = list(results.get(query, ()))
        hits = sum(1 for key in ranked[:k] if key in wanted_set)
        precision += hits / k
        achievable += min(len(wanted_set), k) / k
        recall += hits / min(len(wanted_set), k)
        first = next((i for i, key in enumerate(ranked, 1) if key in wanted_set), None)
        reciprocal += 1 / first if first else 0.0
        if hits == 0:
            misses.append(query)
    n = len(relevant)
    return Scores(queries=n, precision_at_k=precision / n, achievable_precision_at_k=achievable / n,
                  precision_ratio=precision / achievable, recall_at_k=recall / n, mrr=reciprocal / n,
                  misses=tuple(misses))


def load_set(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))
