"""All SQL of process definitions: immutable, numbered versions per ticket type.

Each save appends a version; a deactivation appends one too (``active`` false, no steps), so the
version number alone orders every change of a type and serves as its ETag, and who deactivated
a process, and when, is kept like any other change.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

_COLUMNS = "ticket_type, version, active, steps, created_by, created_at"


async def lock_type(conn: Any, ticket_type: str) -> Any:
    """Take the per-type advisory lock (concurrent changes of one type are numbered in order)
    and return the latest version row, None when the type never had a process."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('processes:' || $1))", ticket_type)
    return await latest(conn, ticket_type)


async def latest(conn: Any, ticket_type: str) -> Any:
    """The newest version of the type, active or not (None: never defined)."""
    return await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM process_definitions WHERE ticket_type = $1 ORDER BY version DESC LIMIT 1",
        ticket_type,
    )


async def version(conn: Any, ticket_type: str, number: int) -> Any:
    return await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM process_definitions WHERE ticket_type = $1 AND version = $2",
        ticket_type, number,
    )


async def insert_next(conn: Any, *, ticket_type: str, active: bool, steps: list[dict[str, Any]],
                      created_by: str) -> Any:
    """Append the next version (the caller holds ``lock_type``)."""
    return await conn.fetchrow(
        "INSERT INTO process_definitions (ticket_type, version, active, steps, created_by) "
        "SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4 FROM process_definitions WHERE ticket_type = $1 "
        f"RETURNING {_COLUMNS}",
        ticket_type, active, steps, created_by,
    )


async def list_current(conn: Any, *, after: str | None, limit: int) -> list[Any]:
    """The newest version of each type whose newest version is active, by ticket type, from
    after ``after`` (keyset), at most ``limit`` rows."""
    return await conn.fetch(
        f"SELECT {_COLUMNS} FROM ("
        f"  SELECT DISTINCT ON (ticket_type) {_COLUMNS} FROM process_definitions"
        "   WHERE $1::text IS NULL OR ticket_type > $1"
        "   ORDER BY ticket_type, version DESC"
        ") newest WHERE active ORDER BY ticket_type LIMIT $2",
        after, limit,
    )


async def existing_teams(conn: Any, team_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Which of ``team_ids`` are teams now."""
    if not team_ids:
        return set()
    rows = await conn.fetch("SELECT id FROM teams WHERE id = ANY($1::uuid[])", list(team_ids))
    return {row["id"] for row in rows}
