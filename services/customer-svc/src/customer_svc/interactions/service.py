"""Behaviour events (login, purchase, page view, coupon, ...): recorded once per external id.

They are facts, not state: never updated, so a second delivery of the same external id answers
the first record and emits nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.outbox import enqueue_raw
from helpdesk_common.pagination import decode_cursor, encode_cursor
from helpdesk_common.problems import Problem

from ..db import outbox
from ..orders import repository as orders
from ..orders.service import require_reader, require_writer
from ..timeline import repository as timeline
from . import repository
from .schemas import InteractionIn

SOURCE = "customer-svc"


def to_read(row: Any) -> dict[str, Any]:
    return {name: row[name] for name in
            ("id", "customer_id", "kind", "occurred_at", "external_id", "properties", "created_at")}


def _no_customer(customer_id: uuid.UUID) -> Problem:
    return Problem(404, "not-found", "Customer not found", f"No customer {customer_id}.")


async def record(conn: Any, *, customer_id: uuid.UUID, body: InteractionIn,
                 principal: Principal) -> tuple[dict[str, Any], bool]:
    """The event and whether it was recorded now (False: its external id was known)."""
    require_writer(principal)
    if body.external_id is not None:
        known = await repository.by_external_id(conn, customer_id, body.external_id)
        if known is not None:
            return to_read(known), False
    if not await orders.customer_exists(conn, customer_id):
        raise _no_customer(customer_id)
    row = await repository.insert(conn, {"id": uuid.uuid4(), "customer_id": customer_id, "kind": body.kind,
                                         "occurred_at": body.occurred_at, "external_id": body.external_id,
                                         "properties": body.properties})
    if row is None:  # the same external id, concurrently
        assert body.external_id is not None
        return to_read(await repository.by_external_id(conn, customer_id, body.external_id)), False
    await enqueue_raw(conn, outbox, events.BehaviorRecorded(
        source=SOURCE, subject=str(customer_id), data=events.BehaviorRecordedData(
            interaction_id=row["id"], customer_id=customer_id, kind=row["kind"], occurred_at=row["occurred_at"],
            external_id=row["external_id"], properties=row["properties"], actor=principal.ref)))
    # on the timeline by kind and external id only: properties are the source system's and may
    # hold anything (addresses, search terms)
    await timeline.record(conn, entry=timeline.entry_id(row["id"], "behavior.recorded"), customer_id=customer_id,
                          at=row["occurred_at"], kind="behavior.recorded", ref_id=row["id"],
                          summary={"behavior": row["kind"], "external_id": row["external_id"]})
    return to_read(row), True


async def list_of_customer(conn: Any, *, customer_id: uuid.UUID, limit: int, cursor: str | None,
                           principal: Principal) -> dict[str, Any]:
    require_reader(principal)
    if not await orders.customer_exists(conn, customer_id):
        raise _no_customer(customer_id)
    rows = await repository.page_of_customer(conn, customer_id, limit=limit + 1,
                                             after=decode_cursor(cursor) if cursor else None)
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [to_read(r) for r in rows],
            "next_cursor": encode_cursor(rows[-1]["occurred_at"], rows[-1]["id"]) if more and rows else None}
