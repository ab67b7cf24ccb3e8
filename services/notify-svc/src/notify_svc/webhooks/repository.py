"""The only place with SQL for webhook subscriptions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_COLUMNS = ("id, url, event_types, description, enabled, disabled_reason, secret_encrypted, "
            "previous_secret_encrypted, previous_secret_expires_at, failing_since, version, created_at, updated_at")


async def insert(conn: AsyncConnection, *, subscription_id: uuid.UUID, url: str, event_types: list[str],
                 description: str, secret_encrypted: bytes, created_by: str) -> Any:
    return (await conn.execute(text(
        f"INSERT INTO webhook_subscriptions (id, url, event_types, description, secret_encrypted, created_by) "
        f"VALUES (:id, :url, :types, :descr, :secret, :by) RETURNING {_COLUMNS}"),
        {"id": subscription_id, "url": url, "types": event_types, "descr": description,
         "secret": secret_encrypted, "by": created_by})).mappings().one()


async def get(conn: AsyncConnection, subscription_id: uuid.UUID, *, for_update: bool = False) -> Any:
    lock = " FOR UPDATE" if for_update else ""
    return (await conn.execute(text(f"SELECT {_COLUMNS} FROM webhook_subscriptions WHERE id = :id{lock}"),
                               {"id": subscription_id})).mappings().first()


async def update(conn: AsyncConnection, subscription_id: uuid.UUID, *, url: str, event_types: list[str],
                 description: str, enabled: bool, disabled_reason: str | None,
                 failing_since: datetime | None) -> Any:
    return (await conn.execute(text(
        f"UPDATE webhook_subscriptions SET url = :url, event_types = :types, description = :descr, "
        f"enabled = :enabled, disabled_reason = :reason, failing_since = :failing, version = version + 1, "
        f"updated_at = now() WHERE id = :id RETURNING {_COLUMNS}"),
        {"id": subscription_id, "url": url, "types": event_types, "descr": description, "enabled": enabled,
         "reason": disabled_reason, "failing": failing_since})).mappings().one()


async def rotate_secret(conn: AsyncConnection, subscription_id: uuid.UUID, *, secret_encrypted: bytes,
                        previous_encrypted: bytes, previous_expires_at: datetime) -> Any:
    return (await conn.execute(text(
        f"UPDATE webhook_subscriptions SET secret_encrypted = :secret, previous_secret_encrypted = :prev, "
        f"previous_secret_expires_at = :expires, version = version + 1, updated_at = now() "
        f"WHERE id = :id RETURNING {_COLUMNS}"),
        {"id": subscription_id, "secret": secret_encrypted, "prev": previous_encrypted,
         "expires": previous_expires_at})).mappings().one()


async def end_queued_deliveries(conn: AsyncConnection, subscription_id: uuid.UUID, *, reason: str) -> None:
    """The subscription's queued deliveries will not be sent (it is being disabled or deleted):
    ``undeliverable`` now, not when their next attempt comes (up to 10 h later). Those in flight
    are settled by their own record."""
    await conn.execute(text(
        "UPDATE deliveries SET status = 'undeliverable', reason = :reason, lease_until = NULL, updated_at = now() "
        "WHERE subscription_id = :id AND status = 'queued'"), {"id": subscription_id, "reason": reason})


async def delete(conn: AsyncConnection, subscription_id: uuid.UUID) -> None:
    await conn.execute(text("DELETE FROM webhook_subscriptions WHERE id = :id"), {"id": subscription_id})


async def page(conn: AsyncConnection, *, after: tuple[datetime, uuid.UUID] | None, limit: int) -> list[Any]:
    """Newest first: (created_at desc, id desc), as other lists."""
    where = "WHERE (created_at, id) < (:at, :id)" if after else ""
    params: dict[str, Any] = {"n": limit + 1}
    if after:
        params.update(at=after[0], id=after[1])
    return list((await conn.execute(text(
        f"SELECT {_COLUMNS} FROM webhook_subscriptions {where} ORDER BY created_at DESC, id DESC LIMIT :n"),
        params)).mappings().all())


async def enabled_for_type(conn: AsyncConnection, event_type: str) -> list[Any]:
    """The subscriptions a new event of ``event_type`` goes to (for the delivery engine)."""
    return list((await conn.execute(text(
        f"SELECT {_COLUMNS} FROM webhook_subscriptions WHERE enabled AND event_types @> ARRAY[:t]::text[] "
        f"ORDER BY id"), {"t": event_type})).mappings().all())


# ---- Idempotency-Key of creates --------------------------------------------------------------

async def claim_key(conn: AsyncConnection, *, caller: str, key: str, request_hash: str) -> bool:
    """True when the key is new (ours now); a concurrent duplicate waits on the row lock."""
    return bool(await conn.scalar(text(
        "INSERT INTO webhook_idempotency_keys (caller, key, request_hash) VALUES (:c, :k, :h) "
        "ON CONFLICT DO NOTHING RETURNING 1"), {"c": caller, "k": key, "h": request_hash}))


async def get_key(conn: AsyncConnection, *, caller: str, key: str) -> Any:
    return (await conn.execute(text(
        "SELECT request_hash, subscription_id FROM webhook_idempotency_keys WHERE caller = :c AND key = :k"),
        {"c": caller, "k": key})).first()


async def bind_key(conn: AsyncConnection, *, caller: str, key: str, subscription_id: uuid.UUID) -> None:
    await conn.execute(text(
        "UPDATE webhook_idempotency_keys SET subscription_id = :s WHERE caller = :c AND key = :k"),
        {"c": caller, "k": key, "s": subscription_id})
