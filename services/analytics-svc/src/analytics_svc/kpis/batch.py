"""The ``ticket_facts`` upserts of a fold transaction, written together before it commits.

Every ticket's creation, link and first-response target used to be its own statement, three
round trips per ticket; inside a fold transaction (``begin`` ... ``end``, the consumer's and the
rebuild's batches) they are collected and written with one statement per kind (``rounds``:
more only when the batch holds two events of one ticket). The upserts are order-independent
(``repository``), so writing them at the end folds to the row they would have made one by one.
Outside a fold transaction (tests, tools) each is written at once, as before.

A reader of ``ticket_facts`` inside the transaction (the process steps' ticket type) calls
``flush`` first.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from ..rounds import rounds
from . import repository


@dataclasses.dataclass
class _Pending:
    created: list[repository.CreatedRow] = dataclasses.field(default_factory=list)
    #: column names -> (ticket id, *values) rows, in event order
    partial: dict[tuple[str, ...], list[tuple[Any, ...]]] = dataclasses.field(default_factory=dict)


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
    pending.created.append(row)


async def partial(conn: Any, ticket_id: uuid.UUID, **values: Any) -> None:
    pending = _OPEN.get(id(conn))
    if pending is None:
        await repository.upsert_partial(conn, ticket_id=ticket_id, **values)
        return
    pending.partial.setdefault(tuple(values), []).append((ticket_id, *values.values()))


async def flush(conn: Any) -> None:
    """Write what the open transaction on ``conn`` has collected (it stays open)."""
    pending = _OPEN.get(id(conn))
    if pending is None:
        return
    created_rows, partial_rows = pending.created, pending.partial
    pending.created, pending.partial = [], {}
    for part in rounds(created_rows, key=lambda r: r[0]):
        await repository.upsert_created_many(conn, part)
    for names, rows in partial_rows.items():
        for part in rounds(rows, key=lambda r: r[0]):
            await repository.upsert_partial_many(conn, names, part)


async def end(conn: Any) -> None:
    """``flush``, and the transaction's collecting ends."""
    try:
        await flush(conn)
    finally:
        discard(conn)


def discard(conn: Any) -> None:
    _OPEN.pop(id(conn), None)
