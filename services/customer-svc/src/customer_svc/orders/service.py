"""Orders: recorded and corrected by their source system's id, read by every user.

``(source, external_id)`` is the order's identity: recording it again updates what changed
(status, amount corrections, items) with one version and one ``order.updated``, and recording it
unchanged writes nothing at all, so a retried webhook or a re-imported file has no effect.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any, Literal

from helpdesk_common import events
from helpdesk_common.identities import InvalidIdentity
from helpdesk_common.identity import Principal
from helpdesk_common.outbox import enqueue_raw
from helpdesk_common.pagination import decode_cursor, encode_cursor
from helpdesk_common.problems import Problem

from ..db import outbox
from ..identities import repository as identities
from ..identities.rules import strict_key
from ..scoring import repository as scoring
from ..timeline import repository as timeline
from . import repository
from .money import format_amount
from .schemas import OrderForCustomerIn, OrderIn

SOURCE = "customer-svc"
#: who records orders: supervisors and admins (an integration uses a user of one of these roles;
#: channel API keys are for intake and never reach /v1/orders)
WRITE_ROLES = ("admin", "supervisor")
Outcome = Literal["created", "updated", "unchanged"]


def require_reader(principal: Principal) -> None:
    if not principal.is_user:
        raise Problem(403, "forbidden", "Forbidden", "Only users read orders.")


def require_writer(principal: Principal) -> None:
    if not principal.has_role(*WRITE_ROLES):
        raise Problem(403, "forbidden", "Forbidden", "Only supervisors and admins record orders.")


def to_read(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"], "customer_id": row["customer_id"], "source": row["source"],
        "external_id": row["external_id"], "ordered_at": row["ordered_at"],
        "amount": format_amount(row["amount"], row["currency"]), "currency": row["currency"],
        "status": row["status"], "items": row["items"], "created_at": row["created_at"],
        "updated_at": row["updated_at"], "version": row["version"],
    }


def stored_items(body: OrderIn) -> list[dict[str, Any]]:
    return [{"sku": i.sku, "name": i.name, "quantity": i.quantity, "unit_price": i.unit_price} for i in body.items]


def wanted_values(body: OrderIn) -> dict[str, Any]:
    return {"ordered_at": body.ordered_at, "amount": Decimal(str(body.amount)), "currency": body.currency,
            "status": body.status, "items": stored_items(body)}


def changed_values(row: Any, wanted: dict[str, Any]) -> dict[str, Any]:
    """The fields whose stored value differs (pure; amounts compare as numbers: 12.5 = 12.50)."""
    return {name: value for name, value in wanted.items() if row[name] != value}


def changes_of(row: Any, values: dict[str, Any]) -> dict[str, Any]:
    """Before/after per changed field, amounts in the currency's digits."""
    def shown(name: str, value: Any, currency: str) -> Any:
        if name == "amount":
            return format_amount(value, currency)
        return value.isoformat() if name == "ordered_at" else value

    # items: said to have changed, not carried twice more (the event has the current list; 100
    # items before and after could pass EVENT_MAX_BYTES, docs/security.md)
    return {name: ({} if name == "items" else
                   {"before": shown(name, row[name], row["currency"]),
                    "after": shown(name, value, values.get("currency", row["currency"]))})
            for name, value in values.items()}


def _event(kind: type, row: Any, *, principal: Principal, changes: dict[str, Any] | None = None) -> Any:
    read = to_read(row)
    return kind(source=SOURCE, subject=str(row["customer_id"]), data=events.OrderData(
        order_id=row["id"], customer_id=row["customer_id"], source=row["source"], external_id=row["external_id"],
        ordered_at=row["ordered_at"], amount=read["amount"], currency=row["currency"], status=row["status"],
        items=row["items"], version=row["version"], changes=changes or {}, actor=principal.ref,
    ))


def _conflict(body: OrderIn, owner: uuid.UUID) -> Problem:
    return Problem(409, "order-customer-mismatch", "Order of another customer",
                   f"Order {body.source}:{body.external_id} belongs to customer {owner}.",
                   errors=[{"field": "body.external_id", "message": "belongs to another customer's order",
                            "code": "unique"}])


async def note_on_timeline(conn: Any, row: Any, *, kind: str, changed: list[str] | None = None) -> None:
    """The order on its customer's timeline, in the order's transaction: recorded when it was
    ordered, updated when it changed; the entry's id is the order's version, so a repeat of the
    same request (which writes no version) writes no entry."""
    summary: dict[str, Any] = {"order_id": str(row["id"]), "source": row["source"], "external_id": row["external_id"],
                               "amount": format_amount(row["amount"], row["currency"]), "currency": row["currency"],
                               "status": row["status"]}
    if changed is not None:
        summary["changed"] = changed
    await timeline.record(conn, entry=timeline.entry_id(f"{row['id']}:{row['version']}", kind),
                          customer_id=row["customer_id"], at=row["ordered_at"] if changed is None else row["updated_at"],
                          kind=kind, ref_id=row["id"], summary=summary)


async def record(conn: Any, *, customer_id: uuid.UUID, body: OrderIn,
                 principal: Principal) -> tuple[dict[str, Any], Outcome]:
    """Create the order or bring it up to date; the event goes to the customer's key, so a
    customer's orders stay in order with the customer's other events."""
    require_writer(principal)
    wanted = wanted_values(body)
    for _ in range(2):
        row = await repository.by_external_id(conn, source=body.source, external_id=body.external_id, lock=True)
        if row is None:
            if not await repository.customer_exists(conn, customer_id):
                raise Problem(404, "not-found", "Customer not found", f"No customer {customer_id}.")
            row = await repository.insert(conn, {"id": uuid.uuid4(), "customer_id": customer_id,
                                                 "source": body.source, "external_id": body.external_id, **wanted})
            if row is None:
                continue  # recorded concurrently: read it and update instead
            await enqueue_raw(conn, outbox, _event(events.OrderRecorded, row, principal=principal))
            await note_on_timeline(conn, row, kind="order.recorded")
            await scoring.mark_dirty(conn, customer_id)
            return to_read(row), "created"
        if row["customer_id"] != customer_id:
            raise _conflict(body, row["customer_id"])
        values = changed_values(row, wanted)
        if not values:
            return to_read(row), "unchanged"
        before = row
        row = await repository.update(conn, row["id"], values)
        await enqueue_raw(conn, outbox, _event(events.OrderUpdated, row, principal=principal,
                                               changes=changes_of(before, values)))
        await note_on_timeline(conn, row, kind="order.updated", changed=sorted(values))
        await scoring.mark_dirty(conn, customer_id)
        return to_read(row), "updated"
    raise Problem(409, "conflict", "Concurrent change", "The order changed concurrently; retry.")


async def customer_of(conn: Any, body: OrderForCustomerIn) -> uuid.UUID:
    """The customer a ``POST /v1/orders`` names; 422 naming the field when nobody matches."""
    if body.customer_id is not None:
        if not await repository.customer_exists(conn, body.customer_id):  # a reference in the body: 422, not 404
            raise Problem(422, "validation-error", "Validation failed", f"body.customer_id: no customer {body.customer_id}",
                          errors=[{"field": "body.customer_id", "message": "no such customer", "code": "not_found"}])
        return body.customer_id
    if body.customer_external_id is not None:
        field, pair = "body.customer_external_id", (f"external:{body.source}", body.customer_external_id)
    else:
        assert body.customer_identity is not None
        field = "body.customer_identity"
        try:
            pair = (body.customer_identity.kind, strict_key(body.customer_identity.kind, body.customer_identity.value))
        except InvalidIdentity as exc:
            raise Problem(422, "validation-error", "Validation failed", f"{field}: {exc}",
                          errors=[{"field": field, "message": str(exc), "code": "cross_field"}]) from None
    owner = (await identities.owners_of(conn, [pair])).get(pair)
    if owner is None:
        raise Problem(422, "validation-error", "Validation failed", f"{field}: no customer has {pair[0]} {pair[1]}",
                      errors=[{"field": field, "message": f"no customer has {pair[0]} {pair[1]}",
                               "code": "not_found"}])
    return owner


async def get(conn: Any, *, order_id: uuid.UUID) -> dict[str, Any]:
    row = await repository.get(conn, order_id)
    if row is None:
        raise Problem(404, "not-found", "Order not found", f"No order {order_id}.")
    return to_read(row)


async def list_of_customer(conn: Any, *, customer_id: uuid.UUID, limit: int, cursor: str | None) -> dict[str, Any]:
    if not await repository.customer_exists(conn, customer_id):
        raise Problem(404, "not-found", "Customer not found", f"No customer {customer_id}.")
    rows = await repository.page_of_customer(conn, customer_id, limit=limit + 1,
                                             after=decode_cursor(cursor) if cursor else None)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1]["ordered_at"], rows[-1]["id"]) if more and rows else None
    return {"items": [to_read(r) for r in rows], "next_cursor": next_cursor}
