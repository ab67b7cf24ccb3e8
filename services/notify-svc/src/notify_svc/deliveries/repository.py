"""The only place with SQL for deliveries (asyncpg: the consumer, the dispatcher and the API all
use the service's raw pool)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, NamedTuple

_COLUMNS = ("id, kind, channel, destination, ticket_id, message_id, subscription_id, event_id, status, attempts, "
            "max_attempts, next_attempt_at, lease_until, reason, last_code, provider_id, created_at, updated_at, sent_at, "
            "next_trigger, replays")


class LogEntry(NamedTuple):
    """A notification's log entry (notifications/: ``notification_log``, status ``queued``),
    written in the statement that inserts its delivery, with the delivery's id, or none when
    the dedupe key had one already: one round trip per notification instead of two."""

    event_id: uuid.UUID
    key: str
    recipient: str
    ticket_id: uuid.UUID | None
    reason: str | None
    channel: str | None
    rule: str | None = None


def _logged(insert: str, first: int) -> str:
    """``insert`` (an ``INSERT INTO deliveries ... RETURNING``, answered as it is) writing a
    ``LogEntry`` from parameters ``$first`` on in the same statement."""
    return (
        f"WITH d AS ({insert}), logged AS (INSERT INTO notification_log (event_id, key, recipient, ticket_id, "
        f"status, reason, channel, delivery_id, rule) SELECT ${first}::uuid, ${first + 1}::text, ${first + 2}::text, "
        f"${first + 3}::uuid, 'queued', ${first + 4}::text, ${first + 5}::text, (SELECT id FROM d), "
        f"${first + 6}::text ON CONFLICT DO NOTHING) SELECT * FROM d"
    )


_INSERT = (
    "INSERT INTO deliveries (id, kind, channel, destination, dedupe_key, payload, max_attempts, ticket_id, "
    "message_id, subscription_id, event_id, status, reason) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) "
    "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id"
)
_INSERT_LOGGED = _logged(_INSERT, 14)


async def insert(conn: Any, *, delivery_id: uuid.UUID, kind: str, channel: str, destination: str,
                 dedupe_key: str, payload: dict[str, Any], max_attempts: int, ticket_id: uuid.UUID | None = None,
                 message_id: uuid.UUID | None = None, subscription_id: uuid.UUID | None = None,
                 event_id: uuid.UUID | None = None, status: str = "queued",
                 reason: str | None = None, log: LogEntry | None = None) -> uuid.UUID | None:
    """The new row's id, or None when ``dedupe_key`` already has a delivery (a redelivered event).
    ``status`` ``undeliverable`` (with its ``reason``) records one that can never be attempted."""
    args = (delivery_id, kind, channel, destination, dedupe_key, payload, max_attempts, ticket_id, message_id,
            subscription_id, event_id, status, reason)
    if log is not None:
        return await conn.fetchval(_INSERT_LOGGED, *args, *log)
    return await conn.fetchval(_INSERT, *args)


#: what a dispatcher needs of a claimed row (``claim_due``, ``insert_claimed``)
_CLAIMED = ("id, kind, channel, destination, ticket_id, message_id, subscription_id, event_id, payload, attempts, "
            "max_attempts, created_at, next_trigger")
#: a delivery about a ticket of a restricted customer (privacy/: PIPL Art. 47) waits
_HELD = ("EXISTS (SELECT 1 FROM notification_tickets t JOIN restricted_customers r ON r.customer_id = t.customer_id "
         "WHERE t.ticket_id = {ticket})")
_INSERT_CLAIMED = (
    "INSERT INTO deliveries (id, kind, channel, destination, dedupe_key, payload, max_attempts, ticket_id, "
    "message_id, subscription_id, event_id, status, attempts, lease_until) "
    "SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
    "  CASE WHEN h.held THEN 'queued' ELSE 'sending' END, CASE WHEN h.held THEN 0 ELSE 1 END, "
    # the lease runs from the insert, not from the start of the consumer's transaction
    "  CASE WHEN h.held THEN NULL ELSE clock_timestamp() + make_interval(secs => $12) END "
    f"FROM (SELECT {_HELD.format(ticket='$8')} AS held) h "
    f"ON CONFLICT (dedupe_key) DO NOTHING RETURNING status, lease_until, {_CLAIMED}"
)
_INSERT_CLAIMED_LOGGED = _logged(_INSERT_CLAIMED, 13)


async def insert_claimed(conn: Any, *, delivery_id: uuid.UUID, kind: str, channel: str, destination: str,
                         dedupe_key: str, payload: dict[str, Any], max_attempts: int, lease_s: float,
                         ticket_id: uuid.UUID | None = None, message_id: uuid.UUID | None = None,
                         subscription_id: uuid.UUID | None = None, event_id: uuid.UUID | None = None,
                         log: LogEntry | None = None) -> Any:
    """``insert`` of a queued row, claimed in the same statement as ``claim_due`` would claim it
    (``sending``, its first attempt counted, a lease of ``lease_s``) unless it is held for a
    restricted customer (then ``queued``); the row (with its ``status``), or None when
    ``dedupe_key`` already has a delivery."""
    args = (delivery_id, kind, channel, destination, dedupe_key, payload, max_attempts, ticket_id, message_id,
            subscription_id, event_id, lease_s)
    if log is not None:
        return await conn.fetchrow(_INSERT_CLAIMED_LOGGED, *args, *log)
    return await conn.fetchrow(_INSERT_CLAIMED, *args)


async def unclaim(conn: Any, delivery_ids: list[uuid.UUID]) -> None:
    """Rows claimed by ``insert_claimed`` in this transaction back to ``queued``, due now, their
    attempt uncounted (``handoff.forfeit``)."""
    await conn.execute(
        "UPDATE deliveries SET status = 'queued', attempts = attempts - 1, lease_until = NULL, "
        "next_attempt_at = now(), updated_at = now() WHERE id = ANY($1::uuid[]) AND status = 'sending'",
        delivery_ids)


async def claim_due(conn: Any, *, limit: int, lease_s: float) -> list[Any]:
    """Take up to ``limit`` due rows: queued ones whose time has come, and ``sending`` ones whose
    lease expired (their dispatcher died between send and record). ``SKIP LOCKED``: replicas
    claiming at the same moment take different rows; the lease keeps them apart afterwards.
    The attempt is counted here, so a message that kills its dispatcher every time still runs
    out of attempts. A delivery about a ticket of a restricted customer (privacy/) waits."""
    return await conn.fetch(
        "WITH due AS (SELECT id FROM deliveries "
        "  WHERE ((status = 'queued' AND next_attempt_at <= now()) "
        "     OR (status = 'sending' AND lease_until < now())) "
        f"    AND NOT {_HELD.format(ticket='deliveries.ticket_id')} "
        "  ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) "
        "UPDATE deliveries d SET status = 'sending', attempts = d.attempts + 1, "
        "  lease_until = now() + make_interval(secs => $2), updated_at = now() "
        "FROM due WHERE d.id = due.id "
        f"RETURNING {', '.join('d.' + c for c in _CLAIMED.split(', '))}",
        limit, lease_s)


async def release(conn: Any, delivery_id: uuid.UUID, *, attempt: int, not_before: datetime) -> None:
    """Give a claimed row back without an attempt (its destination was over its rate)."""
    await conn.execute(
        "UPDATE deliveries SET status = 'queued', attempts = attempts - 1, next_attempt_at = $3, "
        "lease_until = NULL, updated_at = now() WHERE id = $1 AND status = 'sending' AND attempts = $2",
        delivery_id, attempt, not_before)


class Attempt(NamedTuple):
    """One attempt's record (``delivery_attempts``), written with the row's outcome (``finish``)."""

    started_at: datetime
    duration_ms: float
    outcome: str
    code: str | None
    error: str | None
    trigger: str = "schedule"


_FINISH = (
    "UPDATE deliveries SET status = $3, next_attempt_at = COALESCE($4, next_attempt_at), lease_until = NULL, "
    "reason = $5, last_code = $6, provider_id = COALESCE($7, provider_id), updated_at = now(), "
    "sent_at = CASE WHEN $3 = 'sent' THEN now() ELSE sent_at END, next_trigger = 'schedule' "
    f"WHERE id = $1 AND status = 'sending' AND attempts = $2 RETURNING {_COLUMNS}"
)
#: the attempt's record and the row's outcome in one statement (a data-modifying CTE runs
#: whether or not the UPDATE around it matches: a late record of a taken-over claim is kept)
_RECORD_AND_FINISH = (
    "WITH logged AS (INSERT INTO delivery_attempts (delivery_id, number, started_at, duration_ms, outcome, code, "
    "error, trigger) VALUES ($1, $2, $8, $9, $10, $11, $12, $13) ON CONFLICT (delivery_id, number) DO UPDATE SET "
    "started_at = EXCLUDED.started_at, duration_ms = EXCLUDED.duration_ms, outcome = EXCLUDED.outcome, "
    "code = EXCLUDED.code, error = EXCLUDED.error, trigger = EXCLUDED.trigger) " + _FINISH
)


async def finish(conn: Any, delivery_id: uuid.UUID, *, attempt: int, status: str, next_attempt_at: datetime | None,
                 reason: str | None, code: str | None, provider_id: str | None, logged: Attempt | None = None) -> Any:
    """The row after an attempt, if it is still this attempt's claim (None: another dispatcher
    took it over after our lease expired, and its record wins). ``logged``: the attempt's record,
    written in the same statement (number ``attempt``)."""
    if logged is None:
        return await conn.fetchrow(_FINISH, delivery_id, attempt, status, next_attempt_at, reason, code, provider_id)
    return await conn.fetchrow(_RECORD_AND_FINISH, delivery_id, attempt, status, next_attempt_at, reason, code,
                               provider_id, *logged)


async def get(conn: Any, delivery_id: uuid.UUID, *, for_update: bool = False) -> Any:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM deliveries WHERE id = $1{lock}", delivery_id)


async def attempts_of(conn: Any, delivery_id: uuid.UUID) -> list[Any]:
    return await conn.fetch(
        "SELECT number, started_at, duration_ms, outcome, code, error, trigger FROM delivery_attempts "
        "WHERE delivery_id = $1 ORDER BY number", delivery_id)


async def requeue(conn: Any, delivery_id: uuid.UUID, *, max_attempts: int, trigger: str = "retry") -> Any:
    """Queue the row now with a fresh budget; ``trigger`` marks its next attempt in the log
    (``retry``; ``replay`` also counts the replay)."""
    return await conn.fetchrow(
        f"UPDATE deliveries SET status = 'queued', next_attempt_at = now(), lease_until = NULL, reason = NULL, "
        f"max_attempts = $2, next_trigger = $3, replays = replays + (CASE WHEN $3 = 'replay' THEN 1 ELSE 0 END), "
        f"updated_at = now() WHERE id = $1 RETURNING {_COLUMNS}",
        delivery_id, max_attempts, trigger)


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


async def subscription_state(conn: Any, subscription_id: uuid.UUID, *, lock: str | None = None) -> Any:
    """id, url, enabled, failing_since; ``lock``: ``"update"`` (the dispatcher's record, which may
    change it) or ``"share"`` (a replay, which must not race a disable). Every transaction that
    writes both a subscription and its deliveries locks the subscription first."""
    suffix = {None: "", "update": " FOR UPDATE", "share": " FOR SHARE"}[lock]
    return await conn.fetchrow(
        f"SELECT id, url, enabled, failing_since FROM webhook_subscriptions WHERE id = $1{suffix}", subscription_id)


async def set_failing_since(conn: Any, subscription_id: uuid.UUID, failing_since: datetime | None) -> None:
    """Delivery state, not configuration: the version (``If-Match``) does not move, so an admin's
    edit is not refused because a delivery failed meanwhile."""
    await conn.execute("UPDATE webhook_subscriptions SET failing_since = $2 WHERE id = $1",
                       subscription_id, failing_since)


async def clear_failing_since(conn: Any, subscription_id: uuid.UUID) -> None:
    """A success ends the run of failures; a no-op (no lock, no write) when there is none."""
    await conn.execute("UPDATE webhook_subscriptions SET failing_since = NULL "
                       "WHERE id = $1 AND failing_since IS NOT NULL", subscription_id)


async def disable_subscription(conn: Any, subscription_id: uuid.UUID, *, reason: str,
                               failing_since: datetime | None) -> bool:
    """True when this call disabled it (it was enabled)."""
    return bool(await conn.fetchval(
        "UPDATE webhook_subscriptions SET enabled = false, disabled_reason = $2, failing_since = $3, "
        "version = version + 1, updated_at = now() WHERE id = $1 AND enabled RETURNING 1",
        subscription_id, reason, failing_since))


async def end_queued_webhook_deliveries(conn: Any, subscription_id: uuid.UUID, *, reason: str) -> int:
    """Queued deliveries of a subscription that will not be sent (it was disabled or deleted):
    ``undeliverable`` now rather than when their next attempt comes, hours later. Rows in flight
    finish their attempt and are settled by their own record."""
    result = await conn.execute(
        "UPDATE deliveries SET status = 'undeliverable', reason = $2, lease_until = NULL, updated_at = now() "
        "WHERE subscription_id = $1 AND status = 'queued'", subscription_id, reason)
    return int(result.split()[-1])


async def claim_replay_key(conn: Any, *, caller: str, key: str, request_hash: str) -> str | None:
    """None when the key is new (ours now); else the hash of the request that used it first.
    Shares the table of subscription creates' keys: a key names one request of its caller."""
    claimed = await conn.fetchval(
        "INSERT INTO webhook_idempotency_keys (caller, key, request_hash) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING RETURNING 1", caller, key, request_hash)
    if claimed:
        return None
    return await conn.fetchval(
        "SELECT request_hash FROM webhook_idempotency_keys WHERE caller = $1 AND key = $2", caller, key)


async def subscribed_event_types(conn: Any) -> set[str]:
    """Every event type at least one enabled subscription wants."""
    rows = await conn.fetch("SELECT DISTINCT unnest(event_types) AS t FROM webhook_subscriptions WHERE enabled")
    return {r["t"] for r in rows}
