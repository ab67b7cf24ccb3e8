"""The only place with SQL for the timeline (bare asyncpg)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson

#: the namespace of timeline row ids (uuid5 of the causing event or row and the entry kind)
_NAMESPACE = uuid.UUID("6d1f6a52-3c1e-4c57-9a55-0e6f3c1b7d21")
#: an entry's insert and its idempotence (the id is ``entry_id``'s), also for a statement of
#: another table's repository that writes an entry with its own row (``ticket_facts.repository``)
INSERT = "INSERT INTO customer_timeline (id, customer_id, at, kind, ref_id, summary)"
ONCE = "ON CONFLICT (id) DO NOTHING"


def entry_id(cause: uuid.UUID | str, kind: str) -> uuid.UUID:
    """The same cause (an event id, or a row id and its version) and kind always give the same id:
    a redelivered event or a re-run job inserts nothing the second time."""
    return uuid.uuid5(_NAMESPACE, f"{cause}:{kind}")


async def record(conn: Any, *, entry: uuid.UUID, customer_id: uuid.UUID, at: datetime, kind: str,
                 ref_id: uuid.UUID | None = None, summary: dict[str, Any] | None = None) -> bool:
    """Append one entry; False when it was already there. ``summary`` is what a reader shows
    (small: ids, numbers, a subject), never a message body. jsonb values go as Python values (the pool's codec encodes them)."""
    status = await conn.execute(
        f"{INSERT} VALUES ($1, $2, $3, $4, $5, $6) {ONCE}",
        entry, customer_id, at, kind, ref_id, summary or {})
    return status.endswith(" 1")


async def record_many(conn: Any, entries: list[dict[str, Any]]) -> None:
    """:func:`record` for a batch (the nightly insight run may move thousands of segments at
    once): one statement, the same idempotent ids. Each entry has ``record``'s keyword arguments."""
    if not entries:
        return
    await conn.execute(
        f"{INSERT} SELECT id, customer_id, at, kind, ref_id, summary::jsonb FROM unnest($1::uuid[], $2::uuid[], "
        "$3::timestamptz[], $4::text[], $5::uuid[], $6::text[]) AS e(id, customer_id, at, kind, ref_id, summary) "
        f"{ONCE}",
        [e["entry"] for e in entries], [e["customer_id"] for e in entries], [e["at"] for e in entries],
        [e["kind"] for e in entries], [e.get("ref_id") for e in entries],
        [orjson.dumps(e.get("summary") or {}).decode() for e in entries])


async def page_of_customer(conn: Any, customer_id: uuid.UUID, *, limit: int,
                           after: tuple[datetime, uuid.UUID] | None, kinds: list[str] | None) -> list[Any]:
    """Newest first on (at, id): the index ``ix_customer_timeline_customer_at``. ``kinds`` keeps
    the entries whose kind, or whose family (the part before the dot: ``ticket`` for
    ``ticket.solved``), is listed; it filters along the customer's own index range."""
    args: list[Any] = [customer_id]
    where = ["customer_id = $1"]
    if kinds:
        args.append(kinds)
        where.append(f"(kind = ANY(${len(args)}::text[]) OR split_part(kind, '.', 1) = ANY(${len(args)}::text[]))")
    if after is not None:
        args += [after[0], after[1]]
        where.append(f"(at, id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit)
    return await conn.fetch(
        f"SELECT id, at, kind, ref_id, summary FROM customer_timeline WHERE {' AND '.join(where)} "
        f"ORDER BY at DESC, id DESC LIMIT ${len(args)}", *args)
