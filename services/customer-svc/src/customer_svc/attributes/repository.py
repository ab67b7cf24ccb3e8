"""The only place with SQL for attribute definitions and unique values (bare asyncpg)."""

from __future__ import annotations

import uuid
from typing import Any

_COLUMNS = "scope, key, label, type, options, scale, required, \"unique\", position, created_at, updated_at, version"
#: columns a PATCH may set (names never come from requests)
UPDATABLE = ("label", "options", "required", "position")
#: the table holding each scope's owners (names never come from requests)
OWNER_TABLES = {"customer": "customers", "organization": "organizations"}


async def list_definitions(conn: Any, scope: str) -> list[Any]:
    return await conn.fetch(f"SELECT {_COLUMNS} FROM attribute_definitions WHERE scope = $1 ORDER BY position, key",
                            scope)


async def get_definition(conn: Any, scope: str, key: str, *, lock: bool = False) -> Any:
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM attribute_definitions WHERE scope = $1 AND key = $2"
                               + (" FOR UPDATE" if lock else ""), scope, key)


async def count_definitions(conn: Any, scope: str) -> int:
    return await conn.fetchval("SELECT count(*) FROM attribute_definitions WHERE scope = $1", scope)


async def insert_definition(conn: Any, values: dict[str, Any]) -> Any:
    """The new row, or None when the key exists in the scope already."""
    return await conn.fetchrow(
        "INSERT INTO attribute_definitions (scope, key, label, type, options, scale, required, \"unique\", position) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (scope, key) DO NOTHING "
        f"RETURNING {_COLUMNS}",
        values["scope"], values["key"], values["label"], values["type"], values["options"], values["scale"],
        values["required"], values["unique"], values["position"],
    )


async def update_definition(conn: Any, scope: str, key: str, values: dict[str, Any]) -> Any:
    names = [n for n in UPDATABLE if n in values]
    sets = ", ".join(f"{n} = ${i + 3}" for i, n in enumerate(names))
    return await conn.fetchrow(
        f"UPDATE attribute_definitions SET {sets}, version = version + 1, updated_at = clock_timestamp() "
        f"WHERE scope = $1 AND key = $2 RETURNING {_COLUMNS}",
        scope, key, *(values[n] for n in names),
    )


async def delete_definition(conn: Any, scope: str, key: str) -> None:
    await conn.execute("DELETE FROM attribute_definitions WHERE scope = $1 AND key = $2", scope, key)
    await conn.execute("DELETE FROM attribute_unique_values WHERE scope = $1 AND key = $2", scope, key)


async def in_use(conn: Any, scope: str, key: str) -> bool:
    """Whether any customer (or organisation) holds a value of the attribute (GIN ``?``)."""
    return bool(await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {OWNER_TABLES[scope]} WHERE attributes ? $1)", key))


async def claim_unique(conn: Any, *, scope: str, key: str, value: str, owner_id: uuid.UUID) -> uuid.UUID:
    """Claim ``value`` for ``owner_id``; returns whoever holds it now (the owner itself when free).
    A concurrent claim of the same value waits for ours to commit."""
    row = await conn.fetchrow(
        "INSERT INTO attribute_unique_values (scope, key, value, owner_id) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (scope, key, value) DO UPDATE SET owner_id = attribute_unique_values.owner_id "
        "RETURNING owner_id",
        scope, key, value, owner_id,
    )
    return row["owner_id"]


async def release_unique(conn: Any, *, scope: str, key: str, owner_id: uuid.UUID, keep: str | None) -> None:
    """Drop the owner's claims on ``key`` other than ``keep``."""
    await conn.execute(
        "DELETE FROM attribute_unique_values WHERE scope = $1 AND key = $2 AND owner_id = $3 "
        "AND value IS DISTINCT FROM $4", scope, key, owner_id, keep)


async def release_all(conn: Any, *, scope: str, owner_id: uuid.UUID) -> None:
    await conn.execute("DELETE FROM attribute_unique_values WHERE scope = $1 AND owner_id = $2", scope, owner_id)
