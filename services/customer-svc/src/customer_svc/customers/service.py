"""Requester resolution: find the customer by any known identity, or create one."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from helpdesk_common import events
from helpdesk_common.identities import identities_of, mask
from helpdesk_common.identity import Principal
from helpdesk_common.outbox import enqueue
from helpdesk_common.problems import Problem

from ..db import outbox
from . import repository

SOURCE = "customer-svc"
PII_ROLES = ("admin", "supervisor", "agent")


class IdentityTakenConcurrently(Exception):
    """Another transaction claimed one of the identities first; the consumer retries."""


def pick_existing(identities: list[tuple[str, str]], owners: dict[tuple[str, str], uuid.UUID]) -> uuid.UUID | None:
    """The owner of the highest-priority identity that has one (identities are in priority order)."""
    for identity in identities:
        if identity in owners:
            return owners[identity]
    return None


async def resolve_requester(conn: AsyncConnection, *, ticket_id: uuid.UUID, requester: dict[str, Any]) -> uuid.UUID | None:
    identities = identities_of(requester)
    if not identities:
        return None
    owners = await repository.owners_of(conn, identities)
    customer_id = pick_existing(identities, owners)
    created = customer_id is None
    emitted: list[Any] = []
    if created:
        customer_id = uuid.uuid4()
        row = await repository.insert_customer(conn, customer_id=customer_id, name=requester.get("name"))
        inserted = await repository.add_identities(conn, customer_id=customer_id, identities=identities)
        if len(inserted) != len(identities):
            raise IdentityTakenConcurrently()
        emitted.append(
            events.CustomerCreated(
                source=SOURCE, subject=str(customer_id),
                data=events.CustomerCreatedData(
                    customer_id=customer_id, name=row.name, created_at=row.created_at,
                    identities=[events.Identity(kind=k, value=v) for k, v in identities],
                ),
            )
        )
    else:
        unknown = [i for i in identities if i not in owners]
        inserted = await repository.add_identities(conn, customer_id=customer_id, identities=unknown)
        if len(inserted) != len(unknown):
            raise IdentityTakenConcurrently()
        emitted += [
            events.CustomerIdentityAdded(
                source=SOURCE, subject=str(customer_id),
                data=events.CustomerIdentityAddedData(customer_id=customer_id, identity=events.Identity(kind=k, value=v)),
            )
            for k, v in inserted
        ]
    emitted.append(
        events.CustomerRequesterResolved(
            source=SOURCE, subject=str(ticket_id),
            data=events.CustomerRequesterResolvedData(ticket_id=ticket_id, customer_id=customer_id, created=created),
        )
    )
    await enqueue(conn, outbox, *emitted)
    return customer_id


def can_see_pii(principal: Principal) -> bool:
    """Who sees contact details unmasked; one place to tighten it."""
    return principal.has_role(*PII_ROLES)


def to_read(row: Any, identities: list[tuple[str, str]], *, unmasked: bool) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "identities": [{"kind": k, "value": v if unmasked else mask(k, v)} for k, v in identities],
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "version": row.version,
    }


async def get_customer(conn: AsyncConnection, *, customer_id: uuid.UUID) -> tuple[Any, list[tuple[str, str]]]:
    row = await repository.get_customer(conn, customer_id)
    if row is None:
        raise Problem(404, "not-found", "Customer not found", f"No customer {customer_id}.")
    return row, (await repository.identities_of(conn, [customer_id]))[customer_id]


