"""All SQL of the form engine: immutable, numbered versions of each ticket type's fields."""

from __future__ import annotations

from typing import Any

DEFAULT_TYPE = ""  # the form for tickets without a type


async def latest(conn: Any, ticket_type: str) -> Any:
    return await conn.fetchrow(
        "SELECT ticket_type, version, fields, created_by, created_at FROM forms WHERE ticket_type = $1 "
        "ORDER BY version DESC LIMIT 1",
        ticket_type,
    )


async def version(conn: Any, ticket_type: str, number: int) -> Any:
    return await conn.fetchrow(
        "SELECT ticket_type, version, fields, created_by, created_at FROM forms WHERE ticket_type = $1 AND version = $2",
        ticket_type, number,
    )


async def lock_type(conn: Any, ticket_type: str) -> int:
    """Take the per-type advisory lock (concurrent saves of one type are numbered in order) and
    return the latest version, 0 when the type has no form yet."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('forms:' || $1))", ticket_type)
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM forms WHERE ticket_type = $1", ticket_type))


async def insert_next(conn: Any, *, ticket_type: str, fields: list[dict[str, Any]], created_by: str) -> Any:
    """Append the next version (the caller holds ``lock_type``)."""
    return await conn.fetchrow(
        "INSERT INTO forms (ticket_type, version, fields, created_by) "
        "SELECT $1, coalesce(max(version), 0) + 1, $2, $3 FROM forms WHERE ticket_type = $1 "
        "RETURNING ticket_type, version, fields, created_by, created_at",
        ticket_type, fields, created_by,
    )


async def list_latest(conn: Any) -> list[Any]:
    return await conn.fetch(
        "SELECT DISTINCT ON (ticket_type) ticket_type, version, fields, created_by, created_at FROM forms "
        "ORDER BY ticket_type, version DESC"
    )
