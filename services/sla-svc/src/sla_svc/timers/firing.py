"""The scheduler's hot path on a bare asyncpg connection: the only SQL the firing loop runs.

One statement claims and advances a batch of due timers (``FOR UPDATE SKIP LOCKED``: two
replicas never claim the same row, and a timer being paused or fulfilled by a handler at
that moment is skipped until the handler commits), records breach outcomes, and returns
what to announce; a second statement writes every outbox row of the batch from arrays.
Both run in one transaction, so a fired point and its event commit together or not at all.
"""

from __future__ import annotations

from typing import Any

from helpdesk_common import outbox

#: Advance each due timer to the *latest* fire point that has passed. A timer reaching its
#: due time breaches; warnings skipped over (downtime, a re-target) are not sent late.
FIRE_SQL = """
WITH now AS (SELECT clock_timestamp() AS ts),
due AS (
    SELECT s.id,
           (SELECT count(*) FROM unnest(s.fire_at) AS p WHERE p <= (SELECT ts FROM now))::int AS reached
    FROM sla_timers s
    WHERE s.status = 'running' AND s.next_fire_at <= (SELECT ts FROM now)
    ORDER BY s.next_fire_at
    LIMIT $1
    FOR UPDATE OF s SKIP LOCKED
),
fired AS (
    UPDATE sla_timers t SET
        fired_count = due.reached,
        status = CASE WHEN due.reached >= cardinality(t.fire_at) THEN 'breached' ELSE 'running' END,
        next_fire_at = CASE WHEN due.reached >= cardinality(t.fire_at) THEN NULL ELSE t.fire_at[due.reached + 1] END,
        breached_at = CASE WHEN due.reached >= cardinality(t.fire_at) THEN (SELECT ts FROM now) END,
        updated_at = (SELECT ts FROM now)
    FROM due
    WHERE t.id = due.id
    RETURNING t.id, t.ticket_id, t.metric, t.cycle, t.policy, t.due_at, t.status, t.escalation,
              t.fire_at[due.reached] AS point_at, t.fractions[due.reached] AS fraction,
              due.reached AS fired_count, cardinality(t.fire_at) - 1 AS warnings
),
outcomes AS (
    INSERT INTO sla_outcomes (ticket_id, metric, cycle, outcome, due_at, at)
    SELECT ticket_id, metric, cycle, 'breached', due_at, (SELECT ts FROM now) FROM fired WHERE status = 'breached'
    ON CONFLICT DO NOTHING
)
SELECT f.*, k.team_id, k.assignee_id
FROM fired f LEFT JOIN sla_tickets k ON k.ticket_id = f.ticket_id
"""

OUTBOX_SQL = """
INSERT INTO outbox (event_id, event_type, topic, key, payload, created_at)
SELECT e, ty, tp, k, p, clock_timestamp()
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bytea[]) AS u(e, ty, tp, k, p)
"""

NEXT_SQL = "SELECT min(next_fire_at) FROM sla_timers WHERE status = 'running'"
RUNNING_SQL = "SELECT count(*) FROM sla_timers WHERE status = 'running'"


async def fire_batch(conn: Any, limit: int) -> list[Any]:
    return await conn.fetch(FIRE_SQL, limit)


async def insert_outbox(conn: Any, rows: list[tuple[Any, str, str, str, bytes]]) -> None:
    if rows:
        outbox.note_write()  # the relay is woken after the commit
        ids, types, topics, keys, payloads = (list(col) for col in zip(*rows))
        await conn.execute(OUTBOX_SQL, ids, types, topics, keys, payloads)


async def next_fire_at(conn: Any) -> Any:
    return await conn.fetchval(NEXT_SQL)


async def running_count(conn: Any) -> int:
    return int(await conn.fetchval(RUNNING_SQL))
