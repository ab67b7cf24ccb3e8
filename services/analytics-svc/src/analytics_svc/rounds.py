"""Split a fold transaction's pending upserts into statements that touch each row once.

An ``INSERT ... ON CONFLICT DO UPDATE`` may not update the same row twice in one statement, and
the upserts a batch defers (``kpis.batch``, ``readmodel.handlers``) must have the effect they
would have had one by one: so the k-th upsert of a key goes into the k-th statement. A batch
rarely holds two events of one key, so this is one statement in all but a few batches.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

T = TypeVar("T")


def rounds(items: Iterable[T], key: Callable[[T], Hashable]) -> list[list[T]]:
    """``items`` in lists where each key appears at most once, a key's items in their order
    across the lists, and the items of one list in their original order (pure)."""
    out: list[list[T]] = []
    seen: dict[Hashable, int] = {}
    for item in items:
        k = key(item)
        n = seen.get(k, 0)
        seen[k] = n + 1
        if n == len(out):
            out.append([])
        out[n].append(item)
    return out
