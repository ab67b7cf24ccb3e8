"""SQL of ``ticket_timers`` (migration 0012). Every function takes a bare asyncpg connection.

Lock order, which is what keeps the scheduler, the request paths and the sweep free of
deadlocks: **the ticket row first, then its timer rows.** Request paths hold the ticket when
they (re)schedule its timers; the scheduler claims tickets with ``SKIP LOCKED`` and only then
locks their due timers, so it never waits for a ticket and nobody holding a ticket ever waits
for a timer row the scheduler holds without also holding that ticket.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

#: NOTIFY channel: a timer was scheduled sooner than the schedulers may sleep (payload: epoch s)
TIMERS_CHANNEL = "ticket_timers"
#: NOTIFY channel of the automation admin writes (the rules part sends it): re-plan open tickets
AUTOMATIONS_CHANNEL = "ticket_automations_changed"
#: ``pg_try_advisory_xact_lock`` key of the automation re-planning sweep ("tktswep")
SWEEP_LOCK_ID = 0x746B7473776570

_COLUMNS = "id, kind, ticket_id, ref, episode, due_at, attempts"

_SCHEDULE = (
    "INSERT INTO ticket_timers (kind, ticket_id, ref, episode, due_at) VALUES ($1, $2, $3, $4, $5) "
    "ON CONFLICT (kind, ticket_id, ref, episode) DO UPDATE SET due_at = EXCLUDED.due_at, attempts = 0, "
    "last_error = NULL WHERE ticket_timers.fired_at IS NULL"
)
#: one pending timer per (kind, ticket, ref): a new episode replaces the pending row of the old one
_DROP_OTHER_EPISODES = (
    "DELETE FROM ticket_timers WHERE kind = $1 AND ticket_id = $2 AND ref = $3 AND episode <> $4 "
    "AND fired_at IS NULL"
)
_CANCEL = "DELETE FROM ticket_timers WHERE kind = $1 AND ticket_id = $2 AND fired_at IS NULL"
_CANCEL_REF = "DELETE FROM ticket_timers WHERE kind = $1 AND ticket_id = $2 AND ref = $3 AND fired_at IS NULL"

#: a ticket's whole plan for one kind in one statement: rows not planned are dropped, planned ones
#: inserted or moved. A row under retry (attempts > 0) keeps its backoff: a change of the ticket
#: must not turn a failing handler into a hot loop.
_REPLACE_PLAN = """
WITH planned AS (
    SELECT * FROM unnest($3::text[], $4::text[], $5::timestamptz[]) AS p(ref, episode, due_at)
), dropped AS (
    DELETE FROM ticket_timers t
    WHERE t.kind = $1 AND t.ticket_id = $2 AND t.fired_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM planned p WHERE p.ref = t.ref AND p.episode = t.episode)
)
INSERT INTO ticket_timers (kind, ticket_id, ref, episode, due_at)
SELECT $1, $2, ref, episode, due_at FROM planned
ON CONFLICT (kind, ticket_id, ref, episode) DO UPDATE SET due_at = EXCLUDED.due_at
WHERE ticket_timers.fired_at IS NULL AND ticket_timers.attempts = 0
  AND ticket_timers.due_at <> EXCLUDED.due_at
"""

#: the tickets of the earliest due timers, then those of them nobody holds, locked: a ticket
#: another transaction holds is skipped this round (its timers wait for the next claim)
_LOCK_TICKETS = "SELECT id FROM tickets WHERE id = ANY($1::uuid[]) ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED"
_CANDIDATES = (
    "SELECT DISTINCT ticket_id FROM (SELECT ticket_id FROM ticket_timers WHERE fired_at IS NULL "
    "AND due_at <= now() ORDER BY due_at LIMIT $1) d"
)
_DUE_OF_TICKETS = (
    f"SELECT {_COLUMNS} FROM ticket_timers WHERE ticket_id = ANY($1::uuid[]) AND fired_at IS NULL "
    "AND due_at <= now() ORDER BY due_at, id FOR UPDATE"
)
_MARK_FIRED = "UPDATE ticket_timers SET fired_at = clock_timestamp() WHERE id = ANY($1::bigint[])"
_FAILED = (
    "UPDATE ticket_timers SET fired_at = NULL, attempts = attempts + 1, last_error = $2, "
    "due_at = clock_timestamp() + make_interval(secs => $3) WHERE id = $1 RETURNING attempts"
)
_EXISTING = "SELECT id FROM tickets WHERE id = ANY($1::uuid[])"
_ORPHANED = (
    "UPDATE ticket_timers SET fired_at = clock_timestamp(), last_error = 'ticket does not exist' "
    "WHERE ticket_id = ANY($1::uuid[]) AND fired_at IS NULL"
)
_NEXT_DUE = "SELECT min(due_at) FROM ticket_timers WHERE fired_at IS NULL"
_PENDING = "SELECT count(*) FROM ticket_timers WHERE fired_at IS NULL"


async def schedule(conn: Any, *, kind: str, ticket_id: uuid.UUID, ref: str, episode: str, due_at: datetime) -> None:
    await conn.execute(_DROP_OTHER_EPISODES, kind, ticket_id, ref, episode)
    await conn.execute(_SCHEDULE, kind, ticket_id, ref, episode, due_at)


async def cancel(conn: Any, *, kind: str, ticket_id: uuid.UUID, ref: str | None) -> None:
    if ref is None:
        await conn.execute(_CANCEL, kind, ticket_id)
    else:
        await conn.execute(_CANCEL_REF, kind, ticket_id, ref)


async def replace_plan(conn: Any, *, kind: str, ticket_id: uuid.UUID,
                       plan: Sequence[tuple[str, str, datetime]]) -> None:
    """``plan``: (ref, episode, due_at) of every pending timer of ``kind`` the ticket should have."""
    refs, episodes, dues = ([p[i] for p in plan] for i in range(3))
    await conn.execute(_REPLACE_PLAN, kind, ticket_id, refs, episodes, dues)


async def notify_due(conn: Any, due_at: datetime) -> None:
    """Delivered at commit, so a scheduler never wakes for a timer it cannot see yet."""
    await conn.execute("SELECT pg_notify($1, $2)", TIMERS_CHANNEL, repr(due_at.timestamp()))


async def lock_free_tickets(conn: Any, ticket_ids: Sequence[uuid.UUID], limit: int) -> list[uuid.UUID]:
    return [r["id"] for r in await conn.fetch(_LOCK_TICKETS, list(ticket_ids), limit)]


async def due_candidates(conn: Any, limit: int) -> list[uuid.UUID]:
    return [r["ticket_id"] for r in await conn.fetch(_CANDIDATES, limit)]


async def lock_due_timers(conn: Any, ticket_ids: Sequence[uuid.UUID]) -> list[Any]:
    return await conn.fetch(_DUE_OF_TICKETS, list(ticket_ids))


async def mark_fired(conn: Any, timer_ids: Sequence[int]) -> None:
    await conn.execute(_MARK_FIRED, list(timer_ids))


async def record_failure(conn: Any, *, timer_id: int, error: str, retry_in_s: float) -> int:
    return int(await conn.fetchval(_FAILED, timer_id, error[:2000], retry_in_s))


async def forget(conn: Any, timer_id: int) -> None:
    """Drop one row outright (a fired timer that turned out not to be its episode's firing)."""
    await conn.execute("DELETE FROM ticket_timers WHERE id = $1", timer_id)


async def existing_tickets(conn: Any, ticket_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    return {r["id"] for r in await conn.fetch(_EXISTING, list(ticket_ids))}


async def retire_orphans(conn: Any, ticket_ids: Sequence[uuid.UUID]) -> None:
    await conn.execute(_ORPHANED, list(ticket_ids))


async def next_due(conn: Any) -> datetime | None:
    return await conn.fetchval(_NEXT_DUE)


async def pending_count(conn: Any) -> int:
    return int(await conn.fetchval(_PENDING))


# --------------------------------------------------------------------------- automation sweep

_OPEN_TICKETS = (
    "SELECT id FROM tickets WHERE id > $1 AND status <> 'closed' AND merged_into IS NULL ORDER BY id LIMIT $2"
)
_DROP_STRAY = (
    "DELETE FROM ticket_timers WHERE kind = $1 AND fired_at IS NULL AND NOT (ref = ANY($2::text[]))"
)


#: the automations and team calendars a plan depends on, as one value (migration 0016)
_FINGERPRINT = """
SELECT md5(coalesce((SELECT string_agg(id::text || ':' || version || ':' || active, ',' ORDER BY id)
                     FROM automations), '')
           || '|' || coalesce((SELECT string_agg(team_key || ':' || version, ',' ORDER BY team_key)
                               FROM team_calendars), ''))
"""
_PLANNED = "SELECT fingerprint FROM automation_planning WHERE id = 1"
_SET_PLANNED = (
    "INSERT INTO automation_planning (id, fingerprint) VALUES (1, $1) "
    "ON CONFLICT (id) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, planned_at = now()"
)


async def plan_fingerprint(conn: Any) -> str:
    return str(await conn.fetchval(_FINGERPRINT))


async def planned_fingerprint(conn: Any) -> str | None:
    return await conn.fetchval(_PLANNED)


async def set_planned_fingerprint(conn: Any, fingerprint: str) -> None:
    await conn.execute(_SET_PLANNED, fingerprint)


async def try_sweep_lock(conn: Any) -> bool:
    """One sweeping replica at a time per batch (transaction-scoped)."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", SWEEP_LOCK_ID))


async def open_ticket_ids(conn: Any, *, after: uuid.UUID, limit: int) -> list[uuid.UUID]:
    return [r["id"] for r in await conn.fetch(_OPEN_TICKETS, after, limit)]


async def drop_stray(conn: Any, *, kind: str, keep_refs: Sequence[str]) -> int:
    """Pending timers of ``kind`` whose ref is not in ``keep_refs`` (deleted or inactive rules)."""
    status = await conn.execute(_DROP_STRAY, kind, list(keep_refs))
    return int(status.split()[-1])
