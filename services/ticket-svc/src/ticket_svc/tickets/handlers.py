"""Consumers of other services' events: the customer-identity projection, links, SLA due times."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from helpdesk_common import events

from . import repository, service


async def handle_customer_created(conn: AsyncConnection, event: events.CustomerCreated) -> None:
    await repository.upsert_identities(
        conn,
        customer_id=event.data.customer_id,
        identities=[(i.kind, i.value) for i in event.data.identities],
    )


async def handle_identity_added(conn: AsyncConnection, event: events.CustomerIdentityAdded) -> None:
    identity = event.data.identity
    await repository.upsert_identities(
        conn, customer_id=event.data.customer_id, identities=[(identity.kind, identity.value)]
    )


async def handle_requester_resolved(conn: AsyncConnection, event: events.CustomerRequesterResolved) -> None:
    await service.on_requester_resolved(conn, ticket_id=event.data.ticket_id, customer_id=event.data.customer_id)


async def handle_sla_applied(conn: AsyncConnection, event: events.SlaApplied) -> None:
    if event.data.metric == "first_response":
        await repository.set_first_response_due(conn, ticket_id=event.data.ticket_id, due_at=event.data.due_at)


HANDLERS = {
    "customer.created": handle_customer_created,
    "customer.identity_added": handle_identity_added,
    "customer.requester_resolved": handle_requester_resolved,
    "sla.applied": handle_sla_applied,
}
