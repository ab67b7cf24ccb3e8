"""The only SQL of the live stream."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, or_, select, text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from helpdesk_common.db import RecordRow, driver_read

from ..db import inbox
from .models import stream_events

#: serialises appends across replicas (pg_advisory_xact_lock key): ``seq`` values are taken
#: at insert time, so without it a transaction could commit seq 11 before another commits seq
#: 10 and a reader that saw 11 would skip 10 for ever. With it, seq order is commit order.
APPEND_LOCK_KEY = 0x6777_7374_7265_616D  # "gwstream"

_COLUMNS = (
    stream_events.c.seq, stream_events.c.type, stream_events.c.ticket_id, stream_events.c.team_id,
    stream_events.c.assignee_id, stream_events.c.previous_team_id, stream_events.c.previous_assignee_id,
    stream_events.c.payload, stream_events.c.occurred_at,
)


#: the consumer's flush (once per batch) and the tail's read (once per NOTIFY) run on bare
#: asyncpg connections of the gateway's raw pool: SQLAlchemy's per-statement work was a fifth of
#: the gateway's CPU under intake, its connection and transaction per batch half of what was
#: left of the stream consumer's.
#:
#: The flush is one statement: the append lock, the rows, the batch's ticket links and the
#: NOTIFY (three round trips before). ``held`` takes the lock; it is read by an uncorrelated
#: condition of every write, which PostgreSQL evaluates once, before that write's scan yields
#: its first row (a one-time filter): no ``seq`` is drawn and no row locked before the lock is
#: held, whichever write runs first (their order is not defined). A link to a customer erased
#: before it arrived drops the ticket's rows, stored and in this batch. The NOTIFY, sent only
#: when the batch has rows, is delivered at commit. One SQL text whatever the counts (arrays,
#: ``unnest ... WITH ORDINALITY``): one prepared statement.
_APPEND_MANY = (
    "WITH held AS (SELECT pg_advisory_xact_lock($10)), "
    "erased AS (SELECT l.t FROM unnest($12::uuid[], $13::uuid[]) AS l(t, c) "
    "JOIN stream_erased_customers x ON x.customer_id = l.c), "
    "appended AS (INSERT INTO stream_events (event_id, type, ticket_id, team_id, assignee_id, "
    "previous_team_id, previous_assignee_id, payload, occurred_at) "
    "SELECT u.e, u.t, u.ti, u.te, u.a, u.pt, u.pa, CAST(u.p AS jsonb), u.o FROM unnest("
    "$1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::text[], $6::uuid[], $7::text[], $8::text[], "
    "$9::timestamptz[]) WITH ORDINALITY AS u(e, t, ti, te, a, pt, pa, p, o, n) "
    "WHERE (SELECT count(*) FROM held) = 1 AND u.ti NOT IN (SELECT t FROM erased) "
    "ORDER BY u.n ON CONFLICT (event_id) DO NOTHING), "
    # a ticket linked twice in a batch: its last link (one row may not be updated twice)
    "linked AS (INSERT INTO stream_ticket_customers (ticket_id, customer_id) "
    "SELECT DISTINCT ON (l.t) l.t, l.c FROM unnest($12::uuid[], $13::uuid[]) WITH ORDINALITY AS l(t, c, n) "
    "WHERE (SELECT count(*) FROM held) = 1 ORDER BY l.t, l.n DESC "
    "ON CONFLICT (ticket_id) DO UPDATE SET customer_id = EXCLUDED.customer_id, linked_at = now()), "
    # stream_events has no index on ticket_id: the uncorrelated EXISTS is a one-time filter too,
    # so a batch without a link to an erased customer (every batch but a rare few) scans nothing
    "dropped AS (DELETE FROM stream_events WHERE (SELECT count(*) FROM held) = 1 "
    "AND EXISTS (SELECT 1 FROM erased) AND ticket_id IN (SELECT t FROM erased)) "
    "SELECT pg_notify($11, '') WHERE cardinality($1::uuid[]) > 0"
)
_ROWS_AFTER = (
    "SELECT seq, type, ticket_id, team_id, assignee_id, previous_team_id, previous_assignee_id, payload, occurred_at "
    "FROM stream_events WHERE seq > $1 ORDER BY seq LIMIT $2"
)


#: a stream row's columns as ``append_many`` takes them (``payload`` as JSON text)
APPEND_COLUMNS = ("event_id", "type", "ticket_id", "team_id", "assignee_id", "previous_team_id",
                  "previous_assignee_id", "payload", "occurred_at")


async def append_many(conn: Any, rows: Sequence[dict[str, Any]], *, channel: str,
                      links: Sequence[tuple[uuid.UUID, uuid.UUID]] = ()) -> None:
    """``rows`` (one dict of ``APPEND_COLUMNS`` each) in one statement on a bare asyncpg
    connection (the stream consumer's), in their order, under the append lock (``seq`` follows
    that order), with ``links`` ((ticket id, customer id), the last one of a ticket wins), and
    NOTIFY ``channel`` at commit."""
    await conn.execute(_APPEND_MANY, *[[r[c] for r in rows] for c in APPEND_COLUMNS], APPEND_LOCK_KEY, channel,
                       [t for t, _ in links], [c for _, c in links])


async def rows_after(conn: Any, *, after: int, limit: int) -> list[Any]:
    """Every row after ``after`` in seq order (the per-process tail, unfiltered), on a bare
    asyncpg connection or a SQLAlchemy one. One statement in autocommit: a single SELECT reads
    one snapshot either way, and a transaction around it cost a BEGIN, SQLAlchemy's first
    statement and a ROLLBACK per NOTIFY."""
    return [RecordRow(r) for r in await driver_read(conn, _ROWS_AFTER, after, limit)]


def _visible(*, sees_all: bool, user_id: str, team_ids: Sequence[uuid.UUID]) -> Any:
    if sees_all:
        return None
    c = stream_events.c
    # no team: the triage queue every agent may read (ticket-svc tickets/policy.py)
    conditions = [c.assignee_id == user_id, c.previous_assignee_id == user_id, c.team_id.is_(None)]
    if team_ids:
        conditions += [c.team_id.in_(list(team_ids)), c.previous_team_id.in_(list(team_ids))]
    return or_(*conditions)


async def visible_rows(
    conn: AsyncConnection, *, after: int, upto: int, sees_all: bool, user_id: str,
    team_ids: Sequence[uuid.UUID], limit: int, newest: bool = False,
) -> list[Row]:
    """Rows in ``(after, upto]`` the viewer may see: the oldest ``limit`` ones, or the newest
    ``limit`` ones when ``newest`` (returned in seq order either way)."""
    stmt = select(*_COLUMNS).where(stream_events.c.seq > after, stream_events.c.seq <= upto)
    visible = _visible(sees_all=sees_all, user_id=user_id, team_ids=team_ids)
    if visible is not None:
        stmt = stmt.where(visible)
    order = stream_events.c.seq.desc() if newest else stream_events.c.seq
    rows = list((await conn.execute(stmt.order_by(order).limit(limit))).all())
    return rows[::-1] if newest else rows


async def bounds(conn: AsyncConnection) -> tuple[int | None, int | None, int]:
    """(oldest kept seq, newest seq, the sequence's last value — 0 when never used)."""
    oldest, newest = (await conn.execute(select(func.min(stream_events.c.seq), func.max(stream_events.c.seq)))).one()
    last_value = await conn.scalar(text(
        "SELECT CASE WHEN is_called THEN last_value ELSE 0 END "
        "FROM stream_events_seq_seq"
    ))
    return oldest, newest, int(last_value or 0)


async def newest_seq(conn: Any) -> int:
    """The newest stored seq (0: none), on a bare asyncpg connection or a SQLAlchemy one."""
    rows = await driver_read(conn, "SELECT coalesce(max(seq), 0) AS seq FROM stream_events")
    return int(rows[0]["seq"])


async def prune(conn: AsyncConnection, *, older_than_s: float, inbox_older_than_s: float) -> int:
    """Delete rows past retention; returns how many stream rows went."""
    gone = await conn.execute(
        delete(stream_events).where(stream_events.c.created_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, older_than_s))
    )
    # a link goes once it is past the retention and its ticket has no row left (a ticket's later
    # rows can outlive its link's age: its erasure must still find them)
    await conn.execute(text(
        "DELETE FROM stream_ticket_customers l WHERE l.linked_at < now() - make_interval(secs => :s) "
        "AND NOT EXISTS (SELECT 1 FROM stream_events e WHERE e.ticket_id = l.ticket_id)"), {"s": older_than_s})
    # an erased customer is kept for as long as a row stored before the erasure can be
    await conn.execute(text(
        "DELETE FROM stream_erased_customers WHERE erased_at < now() - make_interval(secs => :s)"),
        {"s": 2 * older_than_s})
    await conn.execute(
        delete(inbox).where(inbox.c.processed_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, inbox_older_than_s))
    )
    return gone.rowcount or 0
