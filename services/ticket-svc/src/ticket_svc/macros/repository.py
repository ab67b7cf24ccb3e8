"""All SQL of macros."""

from __future__ import annotations

import uuid
from typing import Any

_COLUMNS = "id, name, definition, owner, created_by, created_at, updated_at"


async def insert(conn: Any, *, macro_id: uuid.UUID, name: str, definition: dict[str, Any], owner: str | None,
                 created_by: str) -> Any:
    return await conn.fetchrow(
        f"INSERT INTO macros (id, name, definition, owner, created_by) VALUES ($1, $2, $3, $4, $5) RETURNING {_COLUMNS}",
        macro_id, name, definition, owner, created_by,
    )


async def visible(conn: Any, *, user_ref: str) -> list[Any]:
    return await conn.fetch(
        f"SELECT {_COLUMNS} FROM macros WHERE owner IS NULL OR owner = $1 ORDER BY name, id LIMIT 1000", user_ref
    )


async def get(conn: Any, macro_id: uuid.UUID) -> Any:
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM macros WHERE id = $1", macro_id)


async def delete(conn: Any, macro_id: uuid.UUID) -> None:
    await conn.execute("DELETE FROM macros WHERE id = $1", macro_id)
