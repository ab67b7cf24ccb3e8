"""Customer rules: requester resolution (find by any identity, or create) and reads.

Service functions run on the caller's connection and never commit: the consumer (events) or
the endpoint (requests) owns the transaction.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from helpdesk_common import concurrency, events
from helpdesk_common.identities import identities_of, mask, normalize
from helpdesk_common.identity import Principal
from helpdesk_common.outbox import enqueue_raw
from helpdesk_common.pagination import decode_cursor, page
from helpdesk_common.problems import Problem
from helpdesk_common.validation import fold_key

from ..db import outbox
from . import repository
from .repository import Pair
from .schemas import CustomerUpdate

log = logging.getLogger(__name__)

SOURCE = "customer-svc"
PII_ROLES = ("admin", "supervisor", "agent")
#: who may change a customer's tier: it moves routing and SLA targets of every open ticket
TIER_ROLES = ("admin", "supervisor")


class IdentityTakenConcurrently(Exception):
    """Another transaction claimed one of the identities first.

    Raised so the consumer's transaction rolls back; its retry then sees the committed owner
    and resolves to that customer instead of creating a second one.
    """


def pick_existing(identities: list[Pair], owners: dict[Pair, uuid.UUID]) -> uuid.UUID | None:
    """The owner of the highest-priority identity that has one (``identities`` are in priority order)."""
    for identity in identities:
        if identity in owners:
            return owners[identity]
    return None


async def resolve_requester(
    conn: Any, *, ticket_id: uuid.UUID, requester: dict[str, Any]
) -> tuple[uuid.UUID, bool] | None:
    """Find or create the requester's customer; emits customer.* and customer.requester_resolved.

    Returns ``(customer_id, created)``, or None when the requester carries no identity at all
    (ticket-svc never sends one; there is nothing to resolve by).
    """
    identities = identities_of(requester)
    if not identities:
        log.warning("requester without identity, not resolved", extra={"ticket_id": str(ticket_id)})
        return None
    owners = await repository.owners_of(conn, identities)
    existing = pick_existing(identities, owners)
    emitted: list[Any] = []
    if existing is None:
        customer_id = uuid.uuid4()
        row = await repository.insert_customer(conn, customer_id=customer_id, name=requester.get("name"))
        inserted = await repository.add_identities(conn, customer_id=customer_id, identities=identities)
        if len(inserted) != len(identities):
            raise IdentityTakenConcurrently(f"identities {set(identities) - set(inserted)} were claimed concurrently")
        emitted.append(
            events.CustomerCreated(
                source=SOURCE,
                subject=str(customer_id),
                data=events.CustomerCreatedData(
                    customer_id=customer_id,
                    name=row["name"],
                    created_at=row["created_at"],
                    identities=[events.Identity(kind=k, value=v) for k, v in identities],
                ),
            )
        )
    else:
        customer_id = existing
        unknown = [i for i in identities if i not in owners]
        inserted = await repository.add_identities(conn, customer_id=customer_id, identities=unknown)
        if len(inserted) != len(unknown):
            raise IdentityTakenConcurrently(f"identities {set(unknown) - set(inserted)} were claimed concurrently")
        emitted += [
            events.CustomerIdentityAdded(
                source=SOURCE,
                subject=str(customer_id),
                data=events.CustomerIdentityAddedData(customer_id=customer_id, identity=events.Identity(kind=k, value=v)),
            )
            for k, v in inserted
        ]
    created = existing is None
    emitted.append(
        events.CustomerRequesterResolved(
            source=SOURCE,
            subject=str(ticket_id),  # keyed by the ticket: ordered with the ticket's own events
            data=events.CustomerRequesterResolvedData(ticket_id=ticket_id, customer_id=customer_id, created=created),
        )
    )
    await enqueue_raw(conn, outbox, *emitted)
    return customer_id, created


def can_see_pii(principal: Principal) -> bool:
    """Who sees contact details unmasked; the one place to tighten it."""
    return principal.has_role(*PII_ROLES)


def to_read(row: Any, identities: list[Pair], *, unmasked: bool) -> dict[str, Any]:
    """A customer as the API shows it (``schemas.CustomerRead``), rendered straight by orjson."""
    return {
        "id": row["id"],
        "name": row["name"],
        "tier": row["tier"],
        "identities": [{"kind": k, "value": v if unmasked else mask(k, v)} for k, v in identities],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "version": row["version"],
    }


async def get_customer(conn: Any, *, customer_id: uuid.UUID, principal: Principal) -> dict[str, Any]:
    row = await repository.get_customer(conn, customer_id)
    if row is None:
        raise Problem(404, "not-found", "Customer not found", f"No customer {customer_id}.")
    identities = (await repository.identities_of(conn, [customer_id]))[customer_id]
    return to_read(row, identities, unmasked=can_see_pii(principal))


def identity_filters(*, email: str | None, phone: str | None) -> list[Pair]:
    found = []
    if email is not None:
        found.append(("email", normalize("email", email)))
    if phone is not None:
        found.append(("phone", normalize("phone", phone)))
    return found


async def list_customers(
    conn: Any,
    *,
    principal: Principal,
    limit: int,
    cursor: str | None,
    email: str | None = None,
    phone: str | None = None,
    tier: str | None = None,
) -> dict[str, Any]:
    rows = await repository.list_customers(
        conn,
        limit=limit + 1,
        after=decode_cursor(cursor) if cursor else None,
        identities=identity_filters(email=email, phone=phone),
        tier=fold_key(tier) if tier is not None else None,
    )
    rows, next_cursor = page(rows, limit)
    identities = await repository.identities_of(conn, [r["id"] for r in rows])
    unmasked = can_see_pii(principal)
    return {"items": [to_read(r, identities[r["id"]], unmasked=unmasked) for r in rows], "next_cursor": next_cursor}


def check_version(current: int, if_match: str | None) -> None:
    """Optimistic concurrency: the shared rule (``helpdesk_common.concurrency``), on the locked row."""
    concurrency.check_version(current, if_match, what="customer")


def changed_fields(row: Any, update: CustomerUpdate) -> dict[str, Any]:
    """The fields the request sets to a value different from the stored one."""
    sent = update.model_dump(exclude_unset=True)
    return {name: value for name, value in sent.items() if row[name] != value}


async def update_customer(
    conn: Any, *, customer_id: uuid.UUID, update: CustomerUpdate, principal: Principal,
    if_match: str | None,
) -> dict[str, Any]:
    """Change a customer's name or tier; emits one ``customer.updated`` when something changed.

    ticket-svc keeps the tier on every open ticket of the customer (routing, SLA re-targeting),
    so a tier change here reaches live SLA timers without anyone touching the tickets.
    """
    if "tier" in update.model_fields_set and not principal.has_role(*TIER_ROLES):
        raise Problem(403, "forbidden", "Forbidden", "Only supervisors and admins change a customer's tier.")
    row = await repository.get_customer(conn, customer_id, lock=True)
    if row is None:
        raise Problem(404, "not-found", "Customer not found", f"No customer {customer_id}.")
    check_version(row["version"], if_match)
    values = changed_fields(row, update)
    if values:
        before = row
        row = await repository.update_customer(conn, customer_id, values)
        await enqueue_raw(conn, outbox, events.CustomerUpdated(
            source=SOURCE, subject=str(customer_id),
            data=events.CustomerUpdatedData(
                customer_id=customer_id, version=row["version"], name=row["name"], tier=row["tier"],
                changes={k: {"before": before[k], "after": v} for k, v in values.items()},
                actor=principal.ref, updated_at=row["updated_at"],
            ),
        ))
    identities = (await repository.identities_of(conn, [customer_id]))[customer_id]
    return to_read(row, identities, unmasked=can_see_pii(principal))
