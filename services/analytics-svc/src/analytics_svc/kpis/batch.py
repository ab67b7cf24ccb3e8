"""The ``ticket_facts`` upserts of a fold transaction, written together before it commits.

Every ticket's creation, link and first-response target used to be its own statement, three
round trips per ticket; inside a fold transaction (``begin`` ... ``end``, the consumer's and the
rebuild's batches) they are collected and written with one statement per kind (``rounds``:
more only when the batch holds two events of one ticket, whose upserts are then written in
their order, since a creation keeps a type a later partial upsert replaced). Writing them at
the end folds to the row they would have made one by one; ``ingested_at`` is the end of the
batch that folded the creation. Outside a fold transaction (tests, tools) each is written at
once, as before.

A reader of ``ticket_facts`` inside the transaction (the process steps' ticket type) calls
``flush`` first.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from ..rounds import rounds
from . import repository


#: a creation's upsert, where a partial one has its column's name
_CREATED = "created"


@dataclasses.dataclass
class _Pending:
    #: (``_CREATED`` or the partial upsert's column, its row), in event order; a row starts
    #: with its ticket id
    upserts: list[tuple[str, tuple[Any, ...]]] = dataclasses.field(default_factory=list)


def _conflict_key(upsert: tuple[str, tuple[Any, ...]]) -> tuple[Any, str]:
    """Upserts of one ticket whose columns overlap must be written in their order: a partial
    one's column, and a creation's ``ticket_type`` (the only column it shares with them)."""
    kind, row = upsert
    return row[0], "ticket_type" if kind == _CREATED else kind


#: fold transactions open in this process: id(connection) -> what they have not written yet
_OPEN: dict[int, _Pending] = {}


def begin(conn: Any) -> None:
    """A fold transaction starts on ``conn`` (what a failed one left is forgotten: it rolled back)."""
    _OPEN[id(conn)] = _Pending()


async def created(conn: Any, row: repository.CreatedRow) -> None:
    pending = _OPEN.get(id(conn))
    if pending is None:
        ticket_id, created_at, priority, status, channel, ticket_type = row
        await repository.upsert_created(conn, ticket_id=ticket_id, created_at=created_at, priority=priority,
                                        status=status, channel=channel, ticket_type=ticket_type)
        return
    pending.upserts.append((_CREATED, row))


async def partial(conn: Any, ticket_id: uuid.UUID, column: str, value: Any) -> None:
    """``repository.upsert_partial`` of one column."""
    pending = _OPEN.get(id(conn))
    if pending is None:
        await repository.upsert_partial(conn, ticket_id=ticket_id, **{column: value})
        return
    pending.upserts.append((column, (ticket_id, value)))


async def flush(conn: Any) -> None:
    """Write what the open transaction on ``conn`` has collected (it stays open)."""
    pending = _OPEN.get(id(conn))
    if pending is None:
        return
    upserts, pending.upserts = pending.upserts, []
    # within a round, each statement touches a ticket once and the statements' columns overlap
    # only where their order does not matter
    for part in rounds(upserts, key=_conflict_key):
        by_kind: dict[str, list[tuple[Any, ...]]] = {}
        for kind, row in part:
            by_kind.setdefault(kind, []).append(row)
        for kind, rows in by_kind.items():
            if kind == _CREATED:
                await repository.upsert_created_many(conn, rows)  # type: ignore[arg-type]
            else:
                await repository.upsert_partial_many(conn, (kind,), rows)


async def end(conn: Any) -> None:
    """``flush``, and the transaction's collecting ends."""
    try:
        await flush(conn)
    finally:
        discard(conn)


def discard(conn: Any) -> None:
    _OPEN.pop(id(conn), None)
