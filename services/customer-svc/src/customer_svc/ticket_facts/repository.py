"""The only place with SQL for the ticket projection (bare asyncpg)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from helpdesk_common import outbox as outbox_rows

from ..db import outbox
from ..scoring import repository as scoring
from ..timeline import repository as timeline

#: what a handler may write (names never come from events)
UPDATABLE = ("customer_id", "number", "subject", "status", "priority", "type", "channel", "tags", "team_id",
             "assignee_id", "language", "created_at", "first_response_at", "solved_at", "closed_at", "reopened",
             "breaches", "first_breached_at", "last_breached_at", "last_customer_message_at",
             "last_customer_channel", "last_message_at", "merged_into", "deleted_at", "version")


async def lock_or_placeholder(conn: Any, ticket_id: uuid.UUID, *, at: datetime) -> tuple[Any, bool]:
    """The ticket's row, locked; a placeholder (status ``new``, created ``at``, no subject) when
    this is the first event of the ticket seen here. True when the row was inserted now.

    The no-op ``DO UPDATE`` locks and returns an existing row in the same round trip."""
    row = await conn.fetchrow(
        "INSERT INTO customer_tickets (ticket_id, status, created_at, updated_at) VALUES ($1, 'new', $2, $2) "
        "ON CONFLICT (ticket_id) DO UPDATE SET ticket_id = EXCLUDED.ticket_id RETURNING *, (xmax = 0) AS inserted",
        ticket_id, at)
    return row, row["inserted"]


async def insert_new(conn: Any, ticket_id: uuid.UUID, values: dict[str, Any], *,
                     creation: tuple[uuid.UUID, str, dict[str, Any]], announce: Sequence[Any] = (),
                     new_customer: Any = None) -> Any:
    """The ticket's row made whole in one statement when no event of it was seen here before
    (the usual ``ticket.created``); None when a row exists (the caller locks and merges into it).

    ``creation``: the timeline entry of the ticket's creation (its id, kind and summary), written
    by the same statement with its customer's dirty mark when the row is inserted with a customer
    and a subject (``service._note_creation``'s effects, without two more round trips).

    ``announce``: events of the transaction to write to the outbox in this statement whatever it
    inserts (the requester's resolution: ``customers.service.resolve_requester``'s ``emit``),
    where they were a statement of their own.

    ``new_customer``: the requester's new customer (``customers.repository.NewCustomer``), written
    by this statement too whatever it inserts; then the result is (the row or None, the
    identities the statement inserted)."""
    names = [n for n in UPDATABLE if n in values]
    columns = "".join(f", {n}" for n in names)
    params = "".join(f", ${i + 2}" for i in range(len(names)))
    entry = len(names) + 2
    arguments = [ticket_id, *(values[n] for n in names), *creation,
                 *(outbox_rows.insert_many_params(*announce) if announce else ())]
    customer = f"{new_customer.ctes(len(arguments) + 1)}, " if new_customer is not None else ""
    row = await conn.fetchrow(
        f"WITH {customer}t AS (INSERT INTO customer_tickets (ticket_id{columns}, updated_at) "
        f"VALUES ($1{params}, clock_timestamp()) ON CONFLICT (ticket_id) DO NOTHING RETURNING *), "
        "noted AS (SELECT t.* FROM t WHERE t.customer_id IS NOT NULL AND t.subject IS NOT NULL), "
        f"e AS ({timeline.INSERT} SELECT ${entry}::uuid, noted.customer_id, noted.created_at, ${entry + 1}::text, "
        f"noted.ticket_id, ${entry + 2}::jsonb FROM noted {timeline.ONCE}), "
        f"d AS ({scoring.MARK} SELECT noted.customer_id FROM noted {scoring.MARK_AGAIN}) "
        + (f", o AS ({outbox_rows.insert_many_sql(outbox, first=entry + 3, after=new_customer and new_customer.CREATED)}) "
           if announce else "")
        + ("SELECT * FROM t" if new_customer is None
           # one row whatever the insert did: the new customer's identities are read either way
           else f"SELECT t.*, added.* FROM {new_customer.ADDED} LEFT JOIN t ON true"),
        *arguments, *(new_customer.params() if new_customer is not None else ()))
    if announce or new_customer is not None:
        outbox_rows.note_write()
    if new_customer is None:
        return row
    return (None if row["ticket_id"] is None else row), new_customer.added(row)


async def update(conn: Any, ticket_id: uuid.UUID, values: dict[str, Any]) -> Any:
    names = [n for n in UPDATABLE if n in values]
    sets = "".join(f"{n} = ${i + 2}, " for i, n in enumerate(names))
    return await conn.fetchrow(
        f"UPDATE customer_tickets SET {sets}updated_at = clock_timestamp() WHERE ticket_id = $1 RETURNING *",
        ticket_id, *(values[n] for n in names))


async def link_if_unknown(conn: Any, ticket_id: uuid.UUID, customer_id: uuid.UUID) -> Any:
    """Give a projected ticket its customer unless it has one; the row when it changed, else None."""
    return await conn.fetchrow(
        "UPDATE customer_tickets SET customer_id = $2, updated_at = clock_timestamp() "
        "WHERE ticket_id = $1 AND customer_id IS NULL RETURNING *", ticket_id, customer_id)
