"""The only place with SQL for idempotency keys (bare asyncpg connection)."""

from __future__ import annotations

from typing import Any


async def claim(conn: Any, *, caller: str, key: str, request_hash: str) -> bool:
    """True if we own the key now. A concurrent claim blocks on the primary key until the first
    transaction ends, then finds its committed row (or takes the key if it rolled back)."""
    return bool(await conn.fetchval(
        "INSERT INTO idempotency_keys (caller, key, request_hash) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING RETURNING 1", caller, key, request_hash))


async def get(conn: Any, *, caller: str, key: str) -> Any:
    return await conn.fetchrow("SELECT request_hash, response FROM idempotency_keys WHERE caller = $1 AND key = $2",
                               caller, key)


async def store(conn: Any, *, caller: str, key: str, response: Any) -> None:
    await conn.execute("UPDATE idempotency_keys SET response = $3 WHERE caller = $1 AND key = $2",
                       caller, key, response)
