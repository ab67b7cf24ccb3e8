"""``privacy.erasure_requested`` in notify-svc's one consumer's transaction: anonymise, then
acknowledge (a redelivery finds nothing left and acknowledges again)."""

from __future__ import annotations

from typing import Any

from helpdesk_common import erasure, events

from ..db import outbox
from . import repository, service


async def _erase(conn: Any, customer_id: Any) -> None:
    await service.erase(conn, customer_id=customer_id)


handle_erasure_requested = erasure.raw_erasure_handler(service=service.SOURCE, outbox=outbox, erase=_erase)


async def handle_customer_restricted(conn: Any, event: events.CustomerRestricted) -> None:
    """Deliveries about a restricted customer's tickets are held (deliveries.repository.claim_due)."""
    data = event.data
    await repository.restrict(conn, customer_id=data.customer_id, restricted=data.restricted, at=data.at)


PRIVACY_HANDLERS = {"privacy.erasure_requested": handle_erasure_requested,
                    "customer.restricted": handle_customer_restricted}
