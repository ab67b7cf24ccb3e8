"""The only place with SQL for data subject requests (bare asyncpg)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson

COLUMNS = ("id, customer_id, kind, state, requested_by, services, log_state, suspended_reason, "
           "bundle IS NOT NULL AS bundle_ready, bundle_expires_at, created_at, updated_at, completed_at")


def _json(value: Any) -> Any:
    """A value asyncpg's jsonb codec (orjson) can encode: rows' UUIDs, decimals and times as text."""
    from helpdesk_common.responses import dumps

    return orjson.loads(dumps(value))


async def insert_request(conn: Any, *, request_id: uuid.UUID, customer_id: uuid.UUID, kind: str,
                         requested_by: str, services: dict[str, Any]) -> Any:
    """The new request, or None when the customer has an open one of this kind."""
    return await conn.fetchrow(
        "INSERT INTO privacy_requests (id, customer_id, kind, state, requested_by, services) "
        "VALUES ($1, $2, $3, 'pending', $4, $5::jsonb) "
        "ON CONFLICT (customer_id, kind) WHERE state <> 'completed' DO NOTHING "
        f"RETURNING {COLUMNS}", request_id, customer_id, kind, requested_by, services)


async def open_request(conn: Any, *, customer_id: uuid.UUID, kind: str) -> Any:
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM privacy_requests WHERE customer_id = $1 AND kind = $2 AND state <> 'completed'",
        customer_id, kind)


async def get(conn: Any, request_id: uuid.UUID, *, lock: bool = False) -> Any:
    return await conn.fetchrow(f"SELECT {COLUMNS} FROM privacy_requests WHERE id = $1"
                               + (" FOR UPDATE" if lock else ""), request_id)


async def bundle(conn: Any, request_id: uuid.UUID) -> Any:
    return await conn.fetchval("SELECT bundle FROM privacy_requests WHERE id = $1 AND bundle_expires_at > now()",
                               request_id)


async def list_requests(conn: Any, *, state: str | None, after: tuple[datetime, uuid.UUID] | None,
                        limit: int) -> list[Any]:
    where, args = [], []
    if state is not None:
        args.append(state)
        where.append(f"state = ${len(args)}")
    if after is not None:
        args.extend(after)
        where.append(f"(created_at, id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit + 1)
    sql = (f"SELECT {COLUMNS} FROM privacy_requests " + ("WHERE " + " AND ".join(where) + " " if where else "")
           + f"ORDER BY created_at DESC, id DESC LIMIT ${len(args)}")
    return await conn.fetch(sql, *args)


async def set_state(conn: Any, request_id: uuid.UUID, *, state: str, services: dict[str, Any] | None = None,
                    suspended_reason: str | None = None, log_state: str | None = None) -> Any:
    return await conn.fetchrow(
        "UPDATE privacy_requests SET state = $2, services = COALESCE($3::jsonb, services), "
        "suspended_reason = $4, log_state = COALESCE($5, log_state), updated_at = clock_timestamp(), "
        "completed_at = CASE WHEN $2 = 'completed' THEN clock_timestamp() ELSE completed_at END "
        f"WHERE id = $1 RETURNING {COLUMNS}",
        request_id, state, services, suspended_reason, log_state)


async def store_bundle(conn: Any, request_id: uuid.UUID, *, bundle: dict[str, Any], expires_at: datetime) -> None:
    await conn.execute("UPDATE privacy_requests SET bundle = $2::jsonb, bundle_expires_at = $3, "
                       "updated_at = clock_timestamp() WHERE id = $1", request_id, _json(bundle), expires_at)


async def drop_expired_bundles(conn: Any) -> None:
    await conn.execute("UPDATE privacy_requests SET bundle = NULL WHERE bundle IS NOT NULL AND bundle_expires_at <= now()")


async def claim_pending(conn: Any, *, limit: int, older_than_s: float) -> list[Any]:
    return await conn.fetch(
        f"SELECT {COLUMNS} FROM privacy_requests WHERE state = 'pending' "
        "AND created_at <= clock_timestamp() - make_interval(secs => $2) "
        "ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED", limit, older_than_s)


async def audit(conn: Any, *, request_id: uuid.UUID, action: str, actor: str,
                detail: dict[str, Any] | None = None) -> None:
    await conn.execute("INSERT INTO privacy_audit (request_id, action, actor, detail) VALUES ($1, $2, $3, $4::jsonb)",
                       request_id, action, actor, detail or {})


async def audit_of(conn: Any, request_id: uuid.UUID) -> list[Any]:
    return await conn.fetch("SELECT action, actor, at, detail FROM privacy_audit WHERE request_id = $1 ORDER BY id",
                            request_id)


# --- the customer ---------------------------------------------------------------------------

async def customer(conn: Any, customer_id: uuid.UUID) -> Any:
    return await conn.fetchrow("SELECT id, name, merged_into, erased_at, restricted FROM customers WHERE id = $1",
                               customer_id)


async def customer_ids(conn: Any, customer_id: uuid.UUID) -> list[uuid.UUID]:
    """The customer and every customer merged into it (their tombstones hold its old data)."""
    rows = await conn.fetch("SELECT id FROM customers WHERE id = $1 OR merged_into = $1", customer_id)
    return [r["id"] for r in rows]


async def profiles(conn: Any, ids: list[uuid.UUID]) -> list[Any]:
    """The customers' rows (``name`` / ``notes`` in either stored form: the codec opens them)."""
    return await conn.fetch("SELECT * FROM customers WHERE id = ANY($1::uuid[])", ids)


async def identities(conn: Any, ids: list[uuid.UUID]) -> list[Any]:
    """Identity rows (``value`` or ``value_enc``: the codec opens them)."""
    return await conn.fetch("SELECT * FROM customer_identities WHERE customer_id = ANY($1::uuid[]) "
                            "ORDER BY created_at, id", ids)


async def restricting(conn: Any, customer_id: uuid.UUID) -> bool:
    """Whether an open request keeps the customer restricted (rules.restricts, in SQL)."""
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM privacy_requests WHERE customer_id = $1 AND "
                               "(state = 'suspended' OR (kind = 'erase' AND state <> 'completed')))", customer_id)


async def set_restricted(conn: Any, customer_id: uuid.UUID, restricted: bool) -> bool:
    """Whether the flag changed (on the customer or a customer merged into it)."""
    status = await conn.execute("UPDATE customers SET restricted = $2 WHERE (id = $1 OR merged_into = $1) "
                                "AND restricted <> $2", customer_id, restricted)
    return int(status.split()[-1]) > 0


async def export_rows(conn: Any, ids: list[uuid.UUID]) -> dict[str, list[Any]]:
    """Everything customer-svc holds on these customers, table by table."""
    queries = {
        "attribute_values": "SELECT scope, key, value FROM attribute_unique_values WHERE owner_id = ANY($1::uuid[])",
        "orders": "SELECT * FROM orders WHERE customer_id = ANY($1::uuid[]) ORDER BY ordered_at",
        "interactions": "SELECT * FROM interactions WHERE customer_id = ANY($1::uuid[]) ORDER BY occurred_at",
        "surveys": "SELECT id, kind, customer_id, ticket_id, channel, language, status, sent_at, answered_at, "
                   "rating, score, comment, comment_enc, created_at FROM surveys WHERE customer_id = ANY($1::uuid[])",
        "tickets": "SELECT * FROM customer_tickets WHERE customer_id = ANY($1::uuid[])",
        "timeline": "SELECT * FROM customer_timeline WHERE customer_id = ANY($1::uuid[]) ORDER BY at",
        "insights": "SELECT * FROM customer_insights WHERE customer_id = ANY($1::uuid[])",
        "merges": "SELECT * FROM customer_merges WHERE survivor_id = ANY($1::uuid[]) OR merged_id = ANY($1::uuid[])",
    }
    out: dict[str, list[Any]] = {}
    for name, sql in queries.items():
        out[name] = [dict(r) for r in await conn.fetch(sql, ids)]
    return out


async def erase(conn: Any, *, ids: list[uuid.UUID], erased_name: str, found: list[str]) -> dict[str, int]:
    """customer-svc's anonymisation of these customers (idempotent): the tombstone customer is
    kept for references; every personal field goes. Returns rows changed per table."""
    counts: dict[str, int] = {}

    async def run(name: str, sql: str, *args: Any) -> None:
        status = await conn.execute(sql, *args)
        counts[name] = counts.get(name, 0) + int(status.split()[-1])

    await run("identities", "DELETE FROM customer_identities WHERE customer_id = ANY($1::uuid[])", ids)
    await run("attribute_values", "DELETE FROM attribute_unique_values WHERE owner_id = ANY($1::uuid[])", ids)
    await run("customers",
              "UPDATE customers SET name = $2, notes = NULL, attributes = '{}', tags = '{}', language = NULL, "
              "time_zone = NULL, search = ''::tsvector, name_enc = NULL, notes_enc = NULL, name_key = NULL, erased_at = COALESCE(erased_at, now()), "
              "updated_at = now(), version = version + 1 "
              "WHERE id = ANY($1::uuid[]) AND (erased_at IS NULL OR name IS DISTINCT FROM $2 OR notes IS NOT NULL "
              "OR name_enc IS NOT NULL OR notes_enc IS NOT NULL OR attributes <> '{}' OR tags <> '{}')", ids, erased_name)
    await run("orders", "UPDATE orders SET items = '[]', external_id = 'erased:' || id::text, updated_at = now() "
                        "WHERE customer_id = ANY($1::uuid[]) AND external_id <> 'erased:' || id::text", ids)
    await run("interactions", "UPDATE interactions SET properties = '{}', external_id = NULL "
                              "WHERE customer_id = ANY($1::uuid[]) AND (properties <> '{}' OR external_id IS NOT NULL)",
              ids)
    await run("surveys", "UPDATE surveys SET comment = NULL, comment_enc = NULL WHERE customer_id = ANY($1::uuid[]) "
                         "AND (comment IS NOT NULL OR comment_enc IS NOT NULL)", ids)
    await run("tickets", "UPDATE customer_tickets SET subject = NULL WHERE customer_id = ANY($1::uuid[]) "
                         "AND subject IS NOT NULL", ids)
    await run("timeline", "UPDATE customer_timeline SET summary = '{}' WHERE customer_id = ANY($1::uuid[]) "
                          "AND summary <> '{}'", ids)
    await run("merges", "UPDATE customer_merges SET identities = '[]', moved = '{}' "
                        "WHERE (survivor_id = ANY($1::uuid[]) OR merged_id = ANY($1::uuid[])) "
                        "AND (identities <> '[]' OR moved <> '{}')", ids)
    # an export's bundle assembled before the erasure
    await run("bundles", "UPDATE privacy_requests SET bundle = NULL WHERE customer_id = ANY($1::uuid[]) "
                         "AND bundle IS NOT NULL", ids)
    terms = [str(i) for i in ids] + found
    # stored answers of idempotent POSTs (a customer's record as it was answered)
    await run("idempotency_keys",
              "DELETE FROM idempotency_keys WHERE response IS NOT NULL AND EXISTS (SELECT 1 FROM unnest($1::text[]) "
              "t(term) WHERE position(lower(t.term) IN lower(response::text)) > 0)", terms)
    if found:
        # import files and their error reports that name the person
        await run("imports", "UPDATE imports SET content = NULL WHERE content IS NOT NULL AND EXISTS ("
                             "SELECT 1 FROM unnest($1::text[]) t(term) "
                             "WHERE position(convert_to(t.term, 'UTF8') IN content) > 0)", found)
        await run("import_errors", "DELETE FROM import_errors WHERE EXISTS (SELECT 1 FROM unnest($1::text[]) t(term) "
                                   "WHERE position(lower(t.term) IN lower(message)) > 0)", found)
    return counts
