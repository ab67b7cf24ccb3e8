"""Reading a customer's timeline: every user may (as they may read the customer); summaries hold
ids, numbers, statuses, channels and subjects, never contact details or message bodies, so
there is nothing in them to mask for a role that does not see personal data."""

from __future__ import annotations

import uuid
from typing import Any

from helpdesk_common.pagination import decode_cursor, encode_cursor

from ..customers import repository as customers
from ..customers.service import live
from . import repository


def kinds_of(text: str | None) -> list[str] | None:
    """The ``kind`` query parameter as a list (the schema checked its form), duplicates dropped."""
    if not text:
        return None
    return list(dict.fromkeys(text.split(",")))


def to_read(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "at": row["at"], "kind": row["kind"], "ref_id": row["ref_id"], "summary": row["summary"]}


async def page(conn: Any, *, customer_id: uuid.UUID, limit: int, cursor: str | None,
               kind: str | None) -> dict[str, Any]:
    live(await customers.get_customer(conn, customer_id), customer_id)
    rows = await repository.page_of_customer(conn, customer_id, limit=limit + 1,
                                             after=decode_cursor(cursor) if cursor else None, kinds=kinds_of(kind))
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [to_read(r) for r in rows],
            "next_cursor": encode_cursor(rows[-1]["at"], rows[-1]["id"]) if more and rows else None}
