"""Consumers of other services' events: the customer-identity projection and customer links
(SLA events: ``..sla.handlers``). All run on the bare asyncpg connection of a raw consumer."""

from __future__ import annotations

from typing import Any

from helpdesk_common import events

from ..pii.codec import sealed_identities
from ..sla.handlers import SLA_HANDLERS
from . import repository, service


async def handle_customer_created(conn: Any, event: events.CustomerCreated) -> None:
    await repository.upsert_identities(
        conn, customer_id=event.data.customer_id, identities=sealed_identities([(i.kind, i.value) for i in event.data.identities])
    )


async def handle_identity_added(conn: Any, event: events.CustomerIdentityAdded) -> None:
    identity = event.data.identity
    await repository.upsert_identities(conn, customer_id=event.data.customer_id,
                                       identities=sealed_identities([(identity.kind, identity.value)]))


async def handle_customer_updated(conn: Any, event: events.CustomerUpdated) -> None:
    d = event.data
    await service.on_customer_updated(conn, customer_id=d.customer_id, tier=d.tier, version=d.version)


async def handle_requester_resolved(conn: Any, event: events.CustomerRequesterResolved) -> None:
    await service.on_requester_resolved(conn, ticket_id=event.data.ticket_id, customer_id=event.data.customer_id)


HANDLERS = {
    "customer.created": handle_customer_created,
    "customer.identity_added": handle_identity_added,
    "customer.updated": handle_customer_updated,
    "customer.requester_resolved": handle_requester_resolved,
    **SLA_HANDLERS,
}
