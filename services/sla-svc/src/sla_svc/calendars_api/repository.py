"""The only place with SQL for calendars."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_COLUMNS = "id, name, timezone, definition, version, created_at, updated_at"


async def insert(conn: AsyncConnection, *, calendar_id: uuid.UUID, name: str, timezone: str,
                 definition: dict[str, Any]) -> Any:
    return (await conn.execute(
        text(f"INSERT INTO calendars (id, name, timezone, definition) VALUES (:id, :name, :tz, CAST(:d AS jsonb)) "
             f"RETURNING {_COLUMNS}"),
        {"id": calendar_id, "name": name, "tz": timezone, "d": _json(definition)},
    )).one()


async def get(conn: AsyncConnection, calendar_id: uuid.UUID) -> Any:
    return (await conn.execute(text(f"SELECT {_COLUMNS} FROM calendars WHERE id = :id"), {"id": calendar_id})).first()


async def update(conn: AsyncConnection, *, calendar_id: uuid.UUID, name: str, timezone: str,
                 definition: dict[str, Any], expected_versions: list[int] | None) -> Any:
    """The updated row; None when there is no such row or its version is not one of
    ``expected_versions`` (None: any version, last writer wins)."""
    return (await conn.execute(
        text(f"UPDATE calendars SET name = :name, timezone = :tz, definition = CAST(:d AS jsonb), "
             f"version = version + 1, updated_at = now() "
             f"WHERE id = :id AND (CAST(:v AS int[]) IS NULL OR version = ANY(CAST(:v AS int[]))) RETURNING {_COLUMNS}"),
        {"id": calendar_id, "name": name, "tz": timezone, "d": _json(definition), "v": expected_versions},
    )).first()


async def exists(conn: AsyncConnection, calendar_id: uuid.UUID) -> bool:
    return bool(await conn.scalar(text("SELECT 1 FROM calendars WHERE id = :id"), {"id": calendar_id}))


async def page(conn: AsyncConnection, *, after: tuple[Any, uuid.UUID] | None, limit: int) -> list[Any]:
    where = "WHERE (created_at, id) > (:c, :i)" if after else ""
    params: dict[str, Any] = {"n": limit + 1}
    if after:
        params.update(c=after[0], i=after[1])
    return list((await conn.execute(
        text(f"SELECT {_COLUMNS} FROM calendars {where} ORDER BY created_at, id LIMIT :n"), params)).all())


async def set_team_calendar(conn: AsyncConnection, *, team_id: uuid.UUID, calendar_id: uuid.UUID) -> Any:
    return (await conn.execute(
        text("INSERT INTO team_calendars (team_id, calendar_id) VALUES (:t, :c) ON CONFLICT (team_id) "
             "DO UPDATE SET calendar_id = EXCLUDED.calendar_id, updated_at = now() "
             "RETURNING team_id, calendar_id, updated_at"),
        {"t": team_id, "c": calendar_id},
    )).one()


async def get_team_calendar(conn: AsyncConnection, team_id: uuid.UUID) -> Any:
    return (await conn.execute(text("SELECT team_id, calendar_id, updated_at FROM team_calendars WHERE team_id = :t"),
                               {"t": team_id})).first()


async def delete_team_calendar(conn: AsyncConnection, team_id: uuid.UUID) -> bool:
    return bool(await conn.scalar(text("DELETE FROM team_calendars WHERE team_id = :t RETURNING true"),
                                  {"t": team_id}))


def _json(value: Any) -> str:
    import orjson

    return orjson.dumps(value).decode()


# --------------------------------------------------------------------------- calendar events


async def bump_team_version(conn: AsyncConnection, team_key: str) -> int:
    """The next version of the team's calendar event; row-locks the counter until commit, so
    changes to one team are ordered and the last to commit carries the highest version."""
    return int(await conn.scalar(text(
        "INSERT INTO team_calendar_versions (team_key) VALUES (:k) "
        "ON CONFLICT (team_key) DO UPDATE SET version = team_calendar_versions.version + 1 RETURNING version"),
        {"k": team_key}))


async def claim_default_version(conn: AsyncConnection) -> bool:
    """Record that the default calendar's event exists (version 1, it never changes); True the
    first time, when the caller publishes it."""
    return bool(await conn.scalar(text(
        "INSERT INTO team_calendar_versions (team_key) VALUES ('default') ON CONFLICT DO NOTHING RETURNING true")))


async def team_calendar_state(conn: AsyncConnection, team_id: uuid.UUID) -> Any:
    """(calendar_id, definition) of the team's calendar now, or None. ``FOR SHARE`` of the
    calendar waits for an edit of it in flight, so the definition published is the committed one."""
    return (await conn.execute(text(
        "SELECT tc.calendar_id, c.definition FROM team_calendars tc JOIN calendars c ON c.id = tc.calendar_id "
        "WHERE tc.team_id = :t FOR SHARE OF c"), {"t": team_id})).first()


async def teams_using(conn: AsyncConnection, calendar_id: uuid.UUID) -> list[uuid.UUID]:
    return list((await conn.execute(text("SELECT team_id FROM team_calendars WHERE calendar_id = :c ORDER BY team_id"),
                                    {"c": calendar_id})).scalars())


async def published_calendars(conn: AsyncConnection) -> list[Any]:
    """Every key with an event, its current version and state, read in one statement (one
    snapshot), for the start-up republish."""
    return list((await conn.execute(text(
        "SELECT v.team_key, v.version, tc.calendar_id, c.definition FROM team_calendar_versions v "
        "LEFT JOIN team_calendars tc ON CAST(tc.team_id AS text) = v.team_key "
        "LEFT JOIN calendars c ON c.id = tc.calendar_id ORDER BY v.team_key"))).all())
