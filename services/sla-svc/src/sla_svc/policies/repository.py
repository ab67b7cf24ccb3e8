"""The only place with SQL for policies."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_COLUMNS = "id, name, position, enabled, definition, version, created_at, updated_at"


async def next_position(conn: AsyncConnection) -> int:
    return int(await conn.scalar(text("SELECT coalesce(max(position), 0) + 10 FROM policies")))


async def insert(conn: AsyncConnection, *, policy_id: uuid.UUID, name: str, position: int, enabled: bool,
                 definition: dict[str, Any]) -> Any:
    return (await conn.execute(
        text(f"INSERT INTO policies (id, name, position, enabled, definition) "
             f"VALUES (:id, :name, :pos, :en, CAST(:d AS jsonb)) RETURNING {_COLUMNS}"),
        {"id": policy_id, "name": name, "pos": position, "en": enabled, "d": orjson.dumps(definition).decode()},
    )).one()


async def get(conn: AsyncConnection, policy_id: uuid.UUID) -> Any:
    return (await conn.execute(text(f"SELECT {_COLUMNS} FROM policies WHERE id = :id"), {"id": policy_id})).first()


async def exists(conn: AsyncConnection, policy_id: uuid.UUID) -> bool:
    return bool(await conn.scalar(text("SELECT 1 FROM policies WHERE id = :id"), {"id": policy_id}))


async def update(conn: AsyncConnection, *, policy_id: uuid.UUID, name: str, position: int, enabled: bool,
                 definition: dict[str, Any], expected_versions: list[int] | None) -> Any:
    """The updated row; None when there is no such row or its version is not one of
    ``expected_versions`` (None: any version, last writer wins)."""
    return (await conn.execute(
        text(f"UPDATE policies SET name = :name, position = :pos, enabled = :en, definition = CAST(:d AS jsonb), "
             f"version = version + 1, updated_at = now() "
             f"WHERE id = :id AND (CAST(:v AS int[]) IS NULL OR version = ANY(CAST(:v AS int[]))) RETURNING {_COLUMNS}"),
        {"id": policy_id, "name": name, "pos": position, "en": enabled, "d": orjson.dumps(definition).decode(),
         "v": expected_versions},
    )).first()


async def delete(conn: AsyncConnection, policy_id: uuid.UUID, *, expected_versions: list[int] | None = None) -> bool:
    """Delete the policy if it exists and (when given) its version is one of ``expected_versions``."""
    return bool(await conn.scalar(text(
        "DELETE FROM policies WHERE id = :id AND (CAST(:v AS int[]) IS NULL OR version = ANY(CAST(:v AS int[]))) "
        "RETURNING 1"), {"id": policy_id, "v": expected_versions}))


async def page(conn: AsyncConnection, *, after: tuple[int, uuid.UUID] | None, limit: int) -> list[Any]:
    where = "WHERE (position, id) > (:p, :i)" if after else ""
    params: dict[str, Any] = {"n": limit + 1}
    if after:
        params.update(p=after[0], i=after[1])
    return list((await conn.execute(
        text(f"SELECT {_COLUMNS} FROM policies {where} ORDER BY position, id LIMIT :n"), params)).all())


async def enabled_in_order(conn: AsyncConnection) -> list[Any]:
    return list((await conn.execute(
        text("SELECT id, name, definition FROM policies WHERE enabled ORDER BY position, id"))).all())
