"""The only place with SQL for process steps (bare asyncpg, as the raw consumer hands it).

Each upsert fills its own columns and recomputes ``duration_s`` from the row's values after
the fold, so a completion folded before its start (or the other way round) gives one row."""

from __future__ import annotations

import uuid
from datetime import datetime
from collections.abc import Sequence
from typing import Any

_DURATION = "extract(epoch FROM (step_runs.completed_at - step_runs.started_at))::float8"

_STARTED = (
    "INSERT INTO step_runs (step_id, ticket_id, step, kind, ticket_type, process_version, started_at) "
    "VALUES ($1, $2, $3, $4, (SELECT ticket_type FROM ticket_facts WHERE ticket_id = $2), $5, $6) "
    "ON CONFLICT (step_id) DO UPDATE SET step = EXCLUDED.step, kind = coalesce(EXCLUDED.kind, step_runs.kind), "
    "ticket_type = coalesce(step_runs.ticket_type, EXCLUDED.ticket_type), "
    "process_version = EXCLUDED.process_version, started_at = EXCLUDED.started_at, updated_at = clock_timestamp()"
)
_COMPLETED = (
    "INSERT INTO step_runs (step_id, ticket_id, step, completed_at, outcome, rejected) VALUES ($1, $2, $3, $4, $5, $6) "
    "ON CONFLICT (step_id) DO UPDATE SET completed_at = EXCLUDED.completed_at, outcome = EXCLUDED.outcome, "
    "step = coalesce(step_runs.step, EXCLUDED.step), rejected = step_runs.rejected OR EXCLUDED.rejected, "
    "updated_at = clock_timestamp()"
)
_DECIDED = (
    "INSERT INTO step_decisions (step_id, decided_by, decision, decided_at) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (step_id, decided_by) DO NOTHING"
)
_MARK_REJECTED = (
    "INSERT INTO step_runs (step_id, ticket_id, step, kind, rejected) VALUES ($1, $2, $3, $4, true) "
    "ON CONFLICT (step_id) DO UPDATE SET rejected = true, updated_at = clock_timestamp()"
)
_SET_DURATION = (
    f"UPDATE step_runs SET duration_s = {_DURATION} WHERE step_id = $1 "
    "AND started_at IS NOT NULL AND completed_at IS NOT NULL"
)
# per step key: runs started in the window, their finished ones' median / p90 duration and
# rejection share; "open" counts the key's runs not finished now, whenever they started
_SUMMARY = (
    "WITH runs AS (SELECT * FROM step_runs WHERE started_at IS NOT NULL AND {scope} "
    "  AND ($1::text IS NULL OR ticket_type = $1) "
    "  AND ($2::timestamptz IS NULL OR started_at >= $2) AND ($3::timestamptz IS NULL OR started_at < $3)), "
    "open_now AS (SELECT step, count(*) AS n FROM step_runs WHERE completed_at IS NULL AND started_at IS NOT NULL "
    "  AND {scope} "
    "  AND ($1::text IS NULL OR ticket_type = $1) GROUP BY step), "
    "decisions AS (SELECT r.step, count(*) AS n, count(*) FILTER (WHERE d.decision = 'reject') AS rejects "
    "  FROM runs r JOIN step_decisions d ON d.step_id = r.step_id GROUP BY r.step), "
    "summary AS (SELECT step, min(kind) AS kind, count(*) AS started, count(completed_at) AS completed, "
    "  count(*) FILTER (WHERE completed_at IS NOT NULL AND rejected) AS rejected, "
    "  percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_s) AS median_s, "
    "  percentile_cont(0.9) WITHIN GROUP (ORDER BY duration_s) AS p90_s, max(duration_s) AS max_s "
    "  FROM runs GROUP BY step) "
    "SELECT coalesce(s.step, o.step) AS step, s.kind, coalesce(s.started, 0) AS started, "
    "  coalesce(s.completed, 0) AS completed, coalesce(s.rejected, 0) AS rejected, s.median_s, s.p90_s, s.max_s, "
    "  coalesce(o.n, 0) AS open_now, coalesce(d.n, 0) AS decisions, coalesce(d.rejects, 0) AS reject_decisions "
    "FROM summary s FULL JOIN open_now o ON o.step = s.step LEFT JOIN decisions d ON d.step = coalesce(s.step, o.step) "
    "WHERE coalesce(s.step, o.step) IS NOT NULL ORDER BY 1"
)


async def step_started(conn: Any, *, step_id: uuid.UUID, ticket_id: uuid.UUID, step: str, kind: str | None,
                       process_version: int | None, started_at: datetime) -> None:
    await conn.execute(_STARTED, step_id, ticket_id, step, kind, process_version, started_at)
    await conn.execute(_SET_DURATION, step_id)


async def step_completed(conn: Any, *, step_id: uuid.UUID, ticket_id: uuid.UUID, step: str, completed_at: datetime,
                         outcome: str | None, rejected: bool) -> None:
    await conn.execute(_COMPLETED, step_id, ticket_id, step, completed_at, outcome, rejected)
    await conn.execute(_SET_DURATION, step_id)


async def decision(conn: Any, *, step_id: uuid.UUID, ticket_id: uuid.UUID, step: str, kind: str, decided_by: str,
                   decision: str, decided_at: datetime, ended_rejected: bool) -> None:
    await conn.execute(_DECIDED, step_id, decided_by, decision, decided_at)
    if ended_rejected:
        await conn.execute(_MARK_REJECTED, step_id, ticket_id, step, kind)


async def summary(conn: Any, *, ticket_type: str | None, start: datetime | None, end: datetime | None,
                  scope_sql: str = "true", scope_args: Sequence[Any] = ()) -> list[Any]:
    """Per step key figures; ``scope_sql`` (on ticket_metrics ``m``, arguments from $4) keeps the
    runs of the tickets a caller may see (access.py), "true" for everything."""
    scope = "true" if scope_sql == "true" else (
        f"ticket_id IN (SELECT m.ticket_id FROM ticket_metrics m WHERE {scope_sql})")
    return await conn.fetch(_SUMMARY.format(scope=scope), ticket_type, start, end, *scope_args)
