"""The only place with SQL for idempotency keys."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


async def claim(conn: AsyncConnection, *, caller: str, key: str, request_hash: str) -> bool:
    """True if we own the key now. A concurrent claim blocks on the primary key until the
    first transaction ends, then finds its committed row (or takes the key if it rolled back)."""
    return bool(await conn.scalar(text(
        "INSERT INTO idempotency_keys (caller, key, request_hash) VALUES (:c, :k, :h) "
        "ON CONFLICT DO NOTHING RETURNING 1"), {"c": caller, "k": key, "h": request_hash}))


async def get(conn: AsyncConnection, *, caller: str, key: str) -> Any:
    return (await conn.execute(text(
        "SELECT request_hash, response FROM idempotency_keys WHERE caller = :c AND key = :k"),
        {"c": caller, "k": key})).first()


async def store(conn: AsyncConnection, *, caller: str, key: str, response_json: str) -> None:
    await conn.execute(text(
        "UPDATE idempotency_keys SET response = CAST(:r AS jsonb) WHERE caller = :c AND key = :k"),
        {"c": caller, "k": key, "r": response_json})
