"""All SQL of the SLA projection (bare asyncpg)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from . import colour


#: one ``sla.*`` event in one statement: the metric's state upserted, the ticket's colour and
#: nearest due time computed over all its metrics (``colour.WORST_SQL`` / ``NEAREST_SQL``: the
#: upserted row from the CTE's RETURNING, the others from the table, since a data-modifying
#: CTE's change is not visible to the rest of its statement), and the ticket updated only when
#: one of them moved. Two round trips before (the metrics read back, the colour in Python).
#: Not a ticket change (no version bump, no audit): a read-side projection of sla-svc. With
#: ``$5`` the ticket's first-response due time is set too (``sla.applied``).
SET_METRIC = (
    "WITH up AS (INSERT INTO sla_projection (ticket_id, metric, state, due_at) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (ticket_id, metric) DO UPDATE SET state = EXCLUDED.state, "
    "due_at = coalesce(EXCLUDED.due_at, sla_projection.due_at), updated_at = now() RETURNING state, due_at), "
    "m AS (SELECT state, due_at FROM up "
    "UNION ALL SELECT state, due_at FROM sla_projection WHERE ticket_id = $1 AND metric <> $2), "
    f"c AS (SELECT {colour.WORST_SQL} AS state, {colour.NEAREST_SQL} AS due_at FROM m) "
    "UPDATE tickets t SET sla_state = c.state, sla_due_at = c.due_at, "
    "first_response_due_at = CASE WHEN $5 THEN $6::timestamptz ELSE t.first_response_due_at END "
    "FROM c WHERE t.id = $1 AND (t.sla_state IS DISTINCT FROM c.state OR t.sla_due_at IS DISTINCT FROM c.due_at "
    "OR ($5 AND t.first_response_due_at IS DISTINCT FROM $6::timestamptz))"
)


async def set_metric(conn: Any, *, ticket_id: uuid.UUID, metric: str, state: str, due_at: datetime | None,
                     first_response_due: bool = False, first_response_due_at: datetime | None = None) -> None:
    """Record one metric's state and colour the ticket by all of them (``SET_METRIC``)."""
    await conn.execute(SET_METRIC, ticket_id, metric, state, due_at, first_response_due, first_response_due_at)


async def upsert_team_calendar(conn: Any, *, team_key: str, team_id: uuid.UUID | None, calendar_id: uuid.UUID | None,
                               calendar: dict[str, Any] | None, version: int) -> bool:
    """Keep the event only if it is newer than the stored one (events of one team come in
    order, but a replay or a start-up republish may bring an old version again); True if kept."""
    return bool(await conn.fetchval(
        "INSERT INTO team_calendars (team_key, team_id, calendar_id, calendar, version) "
        "VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (team_key) DO UPDATE SET team_id = EXCLUDED.team_id, calendar_id = EXCLUDED.calendar_id, "
        "calendar = EXCLUDED.calendar, version = EXCLUDED.version, updated_at = now() "
        "WHERE team_calendars.version < EXCLUDED.version RETURNING true",
        team_key, team_id, calendar_id, calendar, version,
    ))


async def team_calendar_versions(conn: Any, team_keys: list[str]) -> list[Any]:
    """(team_key, version, has_calendar) of the given keys: cheap enough to ask on every use."""
    return await conn.fetch(
        "SELECT team_key, version, calendar IS NOT NULL AS has_calendar FROM team_calendars "
        "WHERE team_key = ANY($1::text[])", team_keys)


async def team_calendar(conn: Any, team_key: str) -> Any:
    return await conn.fetchrow("SELECT team_key, version, calendar FROM team_calendars WHERE team_key = $1", team_key)


async def notify_automations_changed(conn: Any) -> None:
    """Business-hour automations count in these calendars: the scheduler re-plans open tickets."""
    await conn.execute("SELECT pg_notify('ticket_automations_changed', '')")
