"""All SQL of the SLA projection (bare asyncpg)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any


async def set_metric(conn: Any, *, ticket_id: uuid.UUID, metric: str, state: str, due_at: datetime | None) -> list[Any]:
    """Record one metric's state; every metric of the ticket as they now stand (``metric``,
    ``state``, ``due_at``), read in the same statement: the upserted row from its RETURNING,
    the others from the table (a data-modifying CTE's own change is not visible to the query
    around it, so the upserted metric is excluded there)."""
    return await conn.fetch(
        "WITH up AS (INSERT INTO sla_projection (ticket_id, metric, state, due_at) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (ticket_id, metric) DO UPDATE SET state = EXCLUDED.state, "
        "due_at = coalesce(EXCLUDED.due_at, sla_projection.due_at), updated_at = now() "
        "RETURNING metric, state, due_at) "
        "SELECT metric, state, due_at FROM up "
        "UNION ALL SELECT metric, state, due_at FROM sla_projection WHERE ticket_id = $1 AND metric <> $2",
        ticket_id, metric, state, due_at,
    )


async def set_ticket_colour(conn: Any, *, ticket_id: uuid.UUID, state: str | None, due_at: datetime | None,
                            first_response_due: bool = False, first_response_due_at: datetime | None = None) -> None:
    """Not a ticket change (no version bump, no audit): a read-side projection of sla-svc. With
    ``first_response_due`` the ticket's first-response due time is set too (``sla.applied``),
    in the same statement."""
    await conn.execute(
        "UPDATE tickets SET sla_state = $2, sla_due_at = $3, "
        "first_response_due_at = CASE WHEN $4 THEN $5::timestamptz ELSE first_response_due_at END "
        "WHERE id = $1 AND (sla_state IS DISTINCT FROM $2 OR sla_due_at IS DISTINCT FROM $3 "
        "OR ($4 AND first_response_due_at IS DISTINCT FROM $5::timestamptz))",
        ticket_id, state, due_at, first_response_due, first_response_due_at,
    )


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
