"""Merge and identity split rules. Service functions run on the endpoint's connection inside its
transaction and never commit."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.outbox import enqueue_raw
from helpdesk_common.problems import Problem

from ..attributes import service as attributes
from ..customers import repository as customer_rows
from ..customers import service as customers
from ..db import outbox
from ..identities import repository as identities
from ..identities.rules import email_domain
from ..organizations.domains import joinable
from ..pii.codec import codec
from ..scoring.repository import mark_dirty
from ..timeline import repository as timeline
from . import repository
from .rules import lock_order, merged_profile

WRITE_ROLES = ("admin", "supervisor")
MERGED_KIND = "customer.merged"
SPLIT_KIND = "customer.identity_split"


def require_supervisor(principal: Principal, what: str) -> None:
    if not principal.has_role(*WRITE_ROLES):
        raise Problem(403, "forbidden", "Forbidden", f"Only supervisors and admins {what}.")


def _itself(field: str) -> Problem:
    return Problem(422, "validation-error", "Validation failed", f"{field}: a customer cannot be merged into itself.",
                   errors=[{"field": field, "message": "is the customer itself", "code": "cross_field"}])


def _already_merged(customer_id: uuid.UUID, survivor_id: uuid.UUID, role: str) -> Problem:
    return Problem(409, "customer-merged", "Customer already merged",
                   f"The {role} {customer_id} was merged into {survivor_id} already.",
                   customer_id=str(customer_id), survivor_id=str(survivor_id))


async def lock_pair(conn: Any, first: uuid.UUID, second: uuid.UUID) -> dict[uuid.UUID, Any]:
    """Both rows locked one by one in id order (``rules.lock_order``); missing ones are absent."""
    rows = {}
    for customer_id in lock_order(first, second):
        row = await customer_rows.get_customer(conn, customer_id, lock=True)
        if row is not None:
            rows[customer_id] = row
    return rows


def _not_found(customer_id: uuid.UUID, field: str | None) -> Problem:
    if field is None:
        return Problem(404, "not-found", "Customer not found", f"No customer {customer_id}.")
    return Problem(404, "not-found", "Customer not found", f"No customer {customer_id} ({field}).",
                   errors=[{"field": field, "message": "no such customer", "code": "not_found"}])


async def merge(conn: Any, *, survivor_id: uuid.UUID, merged_id: uuid.UUID,
                principal: Principal) -> dict[str, Any]:
    """Merge ``merged_id`` into ``survivor_id``; the survivor as ``GET /v1/customers/{id}`` shows it.

    A retry of a merge that happened (the merged customer points at this survivor already)
    answers the survivor and changes nothing."""
    require_supervisor(principal, "merge customers")
    if survivor_id == merged_id:
        raise _itself("body.source_id")
    rows = await lock_pair(conn, survivor_id, merged_id)
    survivor, merged = rows.get(survivor_id), rows.get(merged_id)
    if survivor is None:
        raise _not_found(survivor_id, None)
    if merged is None:
        raise _not_found(merged_id, "body.source_id")
    if merged["merged_into"] == survivor_id and survivor["merged_into"] is None:
        return await customers.read(conn, survivor, principal)
    if survivor["merged_into"] is not None:
        raise _already_merged(survivor_id, survivor["merged_into"], "survivor")
    if merged["merged_into"] is not None:
        raise _already_merged(merged_id, merged["merged_into"], "source")

    moved_identities = await repository.move_identities(conn, merged_id=merged_id, survivor_id=survivor_id)
    moved = await repository.move_rows(conn, merged_id=merged_id, survivor_id=survivor_id)
    tickets = await repository.move_tickets(conn, merged_id=merged_id, survivor_id=survivor_id)
    moved["customer_tickets"] = len(tickets)
    moved["interactions"], moved["interactions_dropped"] = await repository.move_interactions(
        conn, merged_id=merged_id, survivor_id=survivor_id)
    moved["identities"] = len(moved_identities)
    await repository.drop_scores(conn, merged_id)
    await mark_dirty(conn, survivor_id)

    values = merged_profile(survivor, merged)
    await attributes.release(conn, scope=customers.SCOPE, owner_id=merged_id)
    if "attributes" in values:
        await attributes.claim_uniques(conn, scope=customers.SCOPE, owner_id=survivor_id, values=values["attributes"])
    await repository.mark_merged(conn, merged_id=merged_id, survivor_id=survivor_id)
    row = await customer_rows.update_customer(conn, survivor_id, values)  # the version moves even when no field does
    if "tier" in values:  # a tier taken from the merged customer is a tier change like any other
        await customers.note_tier(conn, row, before=survivor["tier"], actor=principal.ref)

    merge_id = uuid.uuid4()
    pairs = [{"kind": i["kind"], "value": i["value"]} for i in moved_identities]
    box = codec()  # the merge audit keeps what moved, encrypted like the identities themselves
    sealed = [{"id": str(i["id"]), "kind": i["kind"], "value_enc": box.seal_merge_identity(i["value"])}
              for i in moved_identities]
    audit = await repository.insert_audit(conn, merge_id=merge_id, survivor_id=survivor_id, merged_id=merged_id,
                                          actor=principal.ref, identities=sealed, moved=moved)
    await timeline.record(conn, entry=timeline.entry_id(merge_id, MERGED_KIND), customer_id=survivor_id,
                          at=audit["at"], kind=MERGED_KIND, ref_id=merged_id,
                          summary={"merged_id": str(merged_id), "actor": principal.ref, "moved": moved})
    await enqueue_raw(conn, outbox, events.CustomerMerged(
        source=customers.SOURCE, subject=str(survivor_id),
        data=events.CustomerMergedData(survivor_id=survivor_id, merged_id=merged_id, actor=principal.ref,
                                       at=audit["at"], identities=[events.Identity(**p) for p in pairs]),
    ), customers.updated_event(row, customers.changes_of(survivor, values), actor=principal.ref),
        *relinked(tickets, survivor_id))
    return await customers.read(conn, row, principal)


def relinked(ticket_ids: list[uuid.UUID], survivor_id: uuid.UUID) -> list[events.CustomerRequesterResolved]:
    """The survivor as the requester of each ticket the merged customer had, keyed by the ticket.

    ticket-svc re-points tickets on ``customer.merged`` already; these close a race it cannot see:
    a resolution to the merged customer committed just before the merge is on the ticket's key,
    ``customer.merged`` on the survivor's, and ticket-svc may apply them in either order. On the
    ticket's key this event comes after that resolution, so the ticket ends on the survivor (and
    ticket-svc changes nothing where it is there already)."""
    return [events.CustomerRequesterResolved(
        source=customers.SOURCE, subject=str(ticket_id),
        data=events.CustomerRequesterResolvedData(ticket_id=ticket_id, customer_id=survivor_id, created=False),
    ) for ticket_id in ticket_ids]


async def split_identity(conn: Any, *, customer_id: uuid.UUID, identity_id: uuid.UUID,
                         target_id: uuid.UUID | None, name: str | None,
                         principal: Principal) -> tuple[dict[str, Any], bool]:
    """Move one identity off ``customer_id`` (a merge, or a requester resolution, that brought two
    people together) onto ``target_id`` or a new customer; the customer that now holds it.

    Only the identity moves: tickets, orders and history stay where they are (which of them were
    the other person's is a judgement no rule can make); the next message with that identity
    reaches its new customer once ticket-svc has applied the events. Also whether that customer
    was created now."""
    require_supervisor(principal, "split identities off customers")
    if target_id == customer_id:
        raise Problem(422, "validation-error", "Validation failed",
                      "body.target_customer_id: the identity is the customer's already.",
                      errors=[{"field": "body.target_customer_id", "message": "is the customer itself",
                               "code": "cross_field"}])
    if target_id is None:
        source = customers.live(await customer_rows.get_customer(conn, customer_id, lock=True), customer_id)
        target = None
    else:
        rows = await lock_pair(conn, customer_id, target_id)
        source = customers.live(rows.get(customer_id), customer_id)
        target = rows.get(target_id)
        if target is None:
            raise _not_found(target_id, "body.target_customer_id")
        if target["merged_into"] is not None:
            raise _already_merged(target_id, target["merged_into"], "target")
    held = {i["id"]: i for i in (await identities.identities_of(conn, [customer_id]))[customer_id]}
    if identity_id not in held:
        raise Problem(404, "not-found", "Identity not found", f"Customer {customer_id} has no identity {identity_id}.")
    if len(held) == 1:
        raise Problem(409, "last-identity", "Last identity",
                      "A customer keeps at least one identity; this is its last one, nothing to split off.")
    identity = held[identity_id]
    pair = events.Identity(kind=identity["kind"], value=identity["value"])
    emitted: list[Any] = []
    created = target is None
    if created:
        target_id = uuid.uuid4()
        target = await customer_rows.insert_customer(conn, customer_id=target_id, name=name,
                                                     join_domain=joinable(email_domain([(pair.kind, pair.value)])))
        emitted.append(events.CustomerCreated(
            source=customers.SOURCE, subject=str(target_id),
            data=events.CustomerCreatedData(customer_id=target_id, name=target["name"], created_at=target["created_at"],
                                            identities=[pair], organization_id=target["organization_id"])))
    else:
        emitted += customers.identity_added(target_id, [(pair.kind, pair.value)])
    await repository.move_identity(conn, identity_id=identity_id, from_id=customer_id, to_id=target_id)
    await customer_rows.update_customer(conn, customer_id, {})
    if not created:
        await customer_rows.update_customer(conn, target_id, {})
    # removed from the old customer first: ticket-svc drops a key only while it is still the old
    # customer's, so the two events may be applied in either order (they are on two keys)
    emitted.insert(0, events.CustomerIdentityRemoved(
        source=customers.SOURCE, subject=str(customer_id),
        data=events.CustomerIdentityRemovedData(customer_id=customer_id, identity=pair, actor=principal.ref)))
    split_id, at = uuid.uuid4(), datetime.now(UTC)
    summary = {"identity": {"kind": pair.kind}, "from": str(customer_id), "to": str(target_id),
               "actor": principal.ref}
    for owner in (customer_id, target_id):
        await timeline.record(conn, entry=timeline.entry_id(f"{split_id}:{owner}", SPLIT_KIND),
                              customer_id=owner, at=at, kind=SPLIT_KIND, ref_id=identity_id, summary=summary)
    await mark_dirty(conn, customer_id)
    await enqueue_raw(conn, outbox, *emitted)
    return await customers.get_customer(conn, customer_id=target_id, principal=principal), created
