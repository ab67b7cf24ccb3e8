"""The only place with SQL for deliveries (asyncpg: the consumer, the dispatcher and the API all
use the service's raw pool)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

_COLUMNS = ("id, kind, channel, destination, ticket_id, message_id, subscription_id, event_id, status, attempts, "
            "max_attempts, next_attempt_at, lease_until, reason, last_code, provider_id, created_at, updated_at, sent_at")


async def insert(conn: Any, *, delivery_id: uuid.UUID, kind: str, channel: str, destination: str,
                 dedupe_key: str, payload: dict[str, Any], max_attempts: int, ticket_id: uuid.UUID | None = None,
                 message_id: uuid.UUID | None = None, subscription_id: uuid.UUID | None = None,
                 event_id: uuid.UUID | None = None) -> uuid.UUID | None:
    """The new row's id, or None when ``dedupe_key`` already has a delivery (a redelivered event)."""
    return await conn.fetchval(
        "INSERT INTO deliveries (id, kind, channel, destination, dedupe_key, payload, max_attempts, ticket_id, "
        "message_id, subscription_id, event_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
        "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
        delivery_id, kind, channel, destination, dedupe_key, payload, max_attempts, ticket_id, message_id,
        subscription_id, event_id)


async def claim_due(conn: Any, *, limit: int, lease_s: float) -> list[Any]:
    """Take up to ``limit`` due rows: queued ones whose time has come, and ``sending`` ones whose
    lease expired (their dispatcher died between send and record). ``SKIP LOCKED``: replicas
    claiming at the same moment take different rows; the lease keeps them apart afterwards.
    The attempt is counted here, so a message that kills its dispatcher every time still runs
    out of attempts."""
    return await conn.fetch(
        "WITH due AS (SELECT id FROM deliveries "
        "  WHERE (status = 'queued' AND next_attempt_at <= now()) "
        "     OR (status = 'sending' AND lease_until < now()) "
        "  ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) "
        "UPDATE deliveries d SET status = 'sending', attempts = d.attempts + 1, "
        "  lease_until = now() + make_interval(secs => $2), updated_at = now() "
        "FROM due WHERE d.id = due.id "
        "RETURNING d.id, d.kind, d.channel, d.destination, d.ticket_id, d.message_id, d.subscription_id, "
        "  d.event_id, d.payload, d.attempts, d.max_attempts, d.created_at",
        limit, lease_s)


async def release(conn: Any, delivery_id: uuid.UUID, *, attempt: int, not_before: datetime) -> None:
    """Give a claimed row back without an attempt (its destination was over its rate)."""
    await conn.execute(
        "UPDATE deliveries SET status = 'queued', attempts = attempts - 1, next_attempt_at = $3, "
        "lease_until = NULL, updated_at = now() WHERE id = $1 AND status = 'sending' AND attempts = $2",
        delivery_id, attempt, not_before)


async def record_attempt(conn: Any, *, delivery_id: uuid.UUID, number: int, started_at: datetime,
                         duration_ms: float, outcome: str, code: str | None, error: str | None) -> None:
    await conn.execute(
        "INSERT INTO delivery_attempts (delivery_id, number, started_at, duration_ms, outcome, code, error) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (delivery_id, number) DO UPDATE SET "
        "started_at = EXCLUDED.started_at, duration_ms = EXCLUDED.duration_ms, outcome = EXCLUDED.outcome, "
        "code = EXCLUDED.code, error = EXCLUDED.error",
        delivery_id, number, started_at, duration_ms, outcome, code, error)


async def finish(conn: Any, delivery_id: uuid.UUID, *, attempt: int, status: str, next_attempt_at: datetime | None,
                 reason: str | None, code: str | None, provider_id: str | None) -> Any:
    """The row after an attempt, if it is still this attempt's claim (None: another dispatcher
    took it over after our lease expired, and its record wins)."""
    return await conn.fetchrow(
        f"UPDATE deliveries SET status = $3, next_attempt_at = COALESCE($4, next_attempt_at), lease_until = NULL, "
        f"reason = $5, last_code = $6, provider_id = COALESCE($7, provider_id), updated_at = now(), "
        f"sent_at = CASE WHEN $3 = 'sent' THEN now() ELSE sent_at END "
        f"WHERE id = $1 AND status = 'sending' AND attempts = $2 RETURNING {_COLUMNS}",
        delivery_id, attempt, status, next_attempt_at, reason, code, provider_id)


async def get(conn: Any, delivery_id: uuid.UUID, *, for_update: bool = False) -> Any:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM deliveries WHERE id = $1{lock}", delivery_id)


async def attempts_of(conn: Any, delivery_id: uuid.UUID) -> list[Any]:
    return await conn.fetch(
        "SELECT number, started_at, duration_ms, outcome, code, error FROM delivery_attempts "
        "WHERE delivery_id = $1 ORDER BY number", delivery_id)


async def requeue(conn: Any, delivery_id: uuid.UUID, *, max_attempts: int) -> Any:
    return await conn.fetchrow(
        f"UPDATE deliveries SET status = 'queued', next_attempt_at = now(), lease_until = NULL, reason = NULL, "
        f"max_attempts = $2, updated_at = now() WHERE id = $1 RETURNING {_COLUMNS}",
        delivery_id, max_attempts)


async def page(conn: Any, *, after: tuple[datetime, uuid.UUID] | None, limit: int, ticket_id: uuid.UUID | None,
               status: str | None, channel: str | None, kind: str | None,
               subscription_id: uuid.UUID | None = None) -> list[Any]:
    """Newest first: (created_at desc, id desc), as other lists."""
    where, args = [], []
    for column, value in (("ticket_id", ticket_id), ("status", status), ("channel", channel), ("kind", kind),
                          ("subscription_id", subscription_id)):
        if value is not None:
            args.append(value)
            where.append(f"{column} = ${len(args)}")
    if after is not None:
        args.extend(after)
        where.append(f"(created_at, id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit + 1)
    clause = f"WHERE {' AND '.join(where)} " if where else ""
    return await conn.fetch(
        f"SELECT {_COLUMNS} FROM deliveries {clause}ORDER BY created_at DESC, id DESC LIMIT ${len(args)}", *args)


async def backlog(conn: Any) -> int:
    """Rows still to send (queued or in flight)."""
    return await conn.fetchval("SELECT count(*) FROM deliveries WHERE status IN ('queued', 'sending')")


# ---- webhooks: the subscriptions an event fans out to (the webhooks domain owns the table) -----


async def enabled_subscriptions(conn: Any, event_type: str) -> list[Any]:
    """The enabled subscriptions of ``event_type`` (the GIN index on ``event_types``)."""
    return await conn.fetch(
        "SELECT id, url FROM webhook_subscriptions WHERE enabled AND event_types @> ARRAY[$1]::text[]", event_type)


async def subscription_for_send(conn: Any, subscription_id: uuid.UUID) -> Any:
    return await conn.fetchrow(
        "SELECT id, url, enabled, secret_encrypted, previous_secret_encrypted, previous_secret_expires_at "
        "FROM webhook_subscriptions WHERE id = $1", subscription_id)


async def disable_subscription(conn: Any, subscription_id: uuid.UUID, *, reason: str) -> None:
    await conn.execute(
        "UPDATE webhook_subscriptions SET enabled = false, disabled_reason = $2, version = version + 1, "
        "updated_at = now() WHERE id = $1 AND enabled", subscription_id, reason)


async def subscribed_event_types(conn: Any) -> set[str]:
    """Every event type at least one enabled subscription wants."""
    rows = await conn.fetch("SELECT DISTINCT unnest(event_types) AS t FROM webhook_subscriptions WHERE enabled")
    return {r["t"] for r in rows}
