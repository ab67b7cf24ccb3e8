"""All SQL of custom statuses."""

from __future__ import annotations

import uuid
from typing import Any

_COLUMNS = "id, key, label, category, active, position, version, created_at"


async def get_by_key(conn: Any, key: str) -> Any:
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM custom_statuses WHERE key = $1", key)


async def get(conn: Any, status_id: uuid.UUID) -> Any:
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM custom_statuses WHERE id = $1", status_id)


async def lock(conn: Any, status_id: uuid.UUID) -> Any:
    """The status, locked for a write (its version is compared under this lock)."""
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM custom_statuses WHERE id = $1 FOR UPDATE", status_id)


async def list_all(conn: Any) -> list[Any]:
    return await conn.fetch(f"SELECT {_COLUMNS} FROM custom_statuses ORDER BY category, position, key")


async def insert(conn: Any, *, status_id: uuid.UUID, key: str, label: str, category: str, position: int) -> Any:
    return await conn.fetchrow(
        "INSERT INTO custom_statuses (id, key, label, category, position) VALUES ($1, $2, $3, $4, $5) "
        f"ON CONFLICT (key) DO NOTHING RETURNING {_COLUMNS}",
        status_id, key, label, category, position,
    )


async def update(conn: Any, status_id: uuid.UUID, *, label: str, active: bool, position: int) -> Any:
    return await conn.fetchrow(
        "UPDATE custom_statuses SET label = $2, active = $3, position = $4, version = version + 1 WHERE id = $1 "
        f"RETURNING {_COLUMNS}",
        status_id, label, active, position,
    )
