"""The only place with SQL for the gateway's erasure (a bare asyncpg connection: the stream
consumer's, ``ConsumerSpec(raw=True)``)."""

from __future__ import annotations

import uuid
from typing import Any

#: the requester's fields that can name a person, read as text (whatever the connection's jsonb codec)
IDENTITY_FIELDS = ("email", "phone", "wechat_openid", "external_id")

_REQUESTERS = (
    "SELECT ticket_id, payload->'requester'->>'name' AS name, "
    + ", ".join(f"payload->'requester'->>'{f}' AS {f}" for f in IDENTITY_FIELDS)
    + " FROM stream_events WHERE payload->>'customer_id' = $1 "
    # a ticket linked to the customer after intake (its rows' customer_id is null)
    "OR ticket_id IN (SELECT ticket_id FROM stream_ticket_customers WHERE customer_id = $2)"
)
_FORGET = (
    "WITH unlinked AS (DELETE FROM stream_ticket_customers WHERE customer_id = $3), "
    # a link to them arriving later drops its ticket's rows (stream/repository.py, the flush)
    "erased AS (INSERT INTO stream_erased_customers (customer_id) VALUES ($3) "
    "ON CONFLICT (customer_id) DO UPDATE SET erased_at = now()) "
    "DELETE FROM stream_events WHERE ticket_id = ANY($1::uuid[]) OR EXISTS ("
    "SELECT 1 FROM unnest($2::text[]) AS x(term) "
    "WHERE position(lower(x.term) IN lower(payload::text)) > 0)"
)


async def requesters(conn: Any, customer_id: uuid.UUID) -> list[Any]:
    """(ticket_id, name and the identity fields) of the stream rows of the customer's tickets:
    rows that name the customer, and rows of tickets linked to them after intake."""
    return list(await conn.fetch(_REQUESTERS, str(customer_id), customer_id))


async def forget(conn: Any, *, customer_id: uuid.UUID, ticket_ids: list[uuid.UUID], found: list[str]) -> int:
    """Delete the stream rows of the person's tickets and any row naming them (a client that
    resumes past them gets the next event: the stream is a notification, not a record) and the
    customer's ticket links, and remember the customer as erased; how many stream rows went."""
    status = await conn.execute(_FORGET, ticket_ids, found, customer_id)
    return int(status.split()[-1])
