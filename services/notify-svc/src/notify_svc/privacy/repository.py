"""The only place with SQL for notify-svc's erasure and export (bare asyncpg)."""

from __future__ import annotations

import uuid
from typing import Any

from helpdesk_common import erasure


async def tickets(conn: Any, customer_id: uuid.UUID) -> list[Any]:
    return await conn.fetch("SELECT ticket_id, requester FROM notification_tickets WHERE customer_id = $1", customer_id)


async def survey_destinations(conn: Any, customer_id: uuid.UUID) -> list[str]:
    """Where survey and confirmation deliveries for the customer went (their payload names it)."""
    rows = await conn.fetch("SELECT DISTINCT destination FROM deliveries WHERE destination IS NOT NULL "
                            "AND payload::text LIKE '%' || $1 || '%'", str(customer_id))
    return [r["destination"] for r in rows]


def _target(customer_id: uuid.UUID) -> str:
    # the person's deliveries: on their tickets, to one of their addresses, or naming them
    return ("(ticket_id = ANY($2::uuid[]) OR payload::text LIKE '%' || $3 || '%' "
            "OR EXISTS (SELECT 1 FROM unnest($1::text[]) t(term) WHERE lower(destination) = lower(t.term)))")


async def export(conn: Any, *, customer_id: uuid.UUID, ticket_ids: list[uuid.UUID], found: list[str]) -> dict[str, Any]:
    rows = await conn.fetch(
        "SELECT id, kind, channel, destination, ticket_id, status, attempts, reason, created_at, sent_at, payload "
        f"FROM deliveries WHERE {_target(customer_id)} ORDER BY created_at", found, ticket_ids, str(customer_id))
    return {"deliveries": [dict(r) for r in rows]}


async def erase(conn: Any, *, customer_id: uuid.UUID, ticket_ids: list[uuid.UUID], found: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}

    async def run(name: str, sql: str, *args: Any) -> None:
        status = await conn.execute(sql, *args)
        counts[name] = counts.get(name, 0) + int(status.split()[-1])

    # deliveries to the person: addresses and rendered bodies gone; one not yet sent is not sent
    await run("deliveries",
              "UPDATE deliveries SET payload = '{}', provider_id = NULL, "
              "status = CASE WHEN status = 'queued' THEN 'undeliverable' ELSE status END, "
              "reason = CASE WHEN status = 'queued' THEN 'erased' ELSE reason END "
              f"WHERE {_target(customer_id)} AND (payload <> '{{}}' OR status = 'queued')",
              found, ticket_ids, str(customer_id))
    await run("notification_tickets",
              "UPDATE notification_tickets SET subject = $2, requester = $3 WHERE customer_id = $1 "
              "AND (subject IS DISTINCT FROM $2 OR requester <> $3::jsonb)",
              customer_id, erasure.REDACTED, {"name": erasure.ERASED_NAME})
    await run("notification_opt_outs", "DELETE FROM notification_opt_outs WHERE EXISTS (SELECT 1 FROM "
                                       "unnest($1::text[]) t(term) WHERE lower(value) = lower(t.term))", found)
    # mentions anywhere else: webhook payloads of other events, logs, errors
    counts["deliveries_mentions"] = await erasure.redact_rows(conn, table="deliveries", key="id", found=found,
                                                              columns={"payload": "json", "destination": "text",
                                                                       "reason": "text"})
    await run("notification_log", "DELETE FROM notification_log WHERE EXISTS (SELECT 1 FROM unnest($1::text[]) "
                                  "t(term) WHERE position(lower(t.term) IN lower(recipient || ' ' || "
                                  "coalesce(reason, ''))) > 0)", found)
    counts["delivery_attempts"] = await erasure.redact_rows(conn, table="delivery_attempts", key="ctid",
                                                            found=found, columns={"error": "text"})
    counts["notification_tickets_mentions"] = await erasure.redact_rows(
        conn, table="notification_tickets", key="ticket_id", found=found, columns={"subject": "text", "requester": "json"})
    return counts


async def restrict(conn: Any, *, customer_id: uuid.UUID, restricted: bool, at: Any) -> None:
    if restricted:
        await conn.execute("INSERT INTO restricted_customers (customer_id, since) VALUES ($1, $2) "
                           "ON CONFLICT (customer_id) DO NOTHING", customer_id, at)
    else:
        await conn.execute("DELETE FROM restricted_customers WHERE customer_id = $1", customer_id)
