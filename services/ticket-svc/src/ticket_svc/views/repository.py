"""All SQL of saved views."""

from __future__ import annotations

import uuid
from typing import Any

_COLUMNS = "id, owner, name, filters, position, created_at"


async def insert(conn: Any, *, view_id: uuid.UUID, owner: str, name: str, filters: dict[str, Any], position: int) -> Any:
    return await conn.fetchrow(
        "INSERT INTO saved_views (id, owner, name, filters, position) VALUES ($1, $2, $3, $4, $5) "
        f"ON CONFLICT (owner, name) DO NOTHING RETURNING {_COLUMNS}",
        view_id, owner, name, filters, position,
    )


async def of_owner(conn: Any, owner: str) -> list[Any]:
    return await conn.fetch(f"SELECT {_COLUMNS} FROM saved_views WHERE owner = $1 ORDER BY position, name", owner)


async def get(conn: Any, *, view_id: uuid.UUID, owner: str) -> Any:
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM saved_views WHERE id = $1 AND owner = $2", view_id, owner)


async def delete(conn: Any, *, view_id: uuid.UUID, owner: str) -> bool:
    return bool(await conn.fetchval("DELETE FROM saved_views WHERE id = $1 AND owner = $2 RETURNING true",
                                    view_id, owner))
