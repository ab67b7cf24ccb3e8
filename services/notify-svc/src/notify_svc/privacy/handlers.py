"""``privacy.erasure_requested`` in notify-svc's one consumer's transaction: anonymise, then
acknowledge (a redelivery finds nothing left and acknowledges again)."""

from __future__ import annotations

from typing import Any

from helpdesk_common import erasure, events

from ..db import outbox
from ..deliveries import handoff
from . import repository, service


async def _erase(conn: Any, customer_id: Any) -> None:
    # rows this transaction claimed for sending (deliveries/handoff.py) are not sent from memory
    await handoff.forfeit(conn)
    await service.erase(conn, customer_id=customer_id)


handle_erasure_requested = erasure.raw_erasure_handler(service=service.SOURCE, outbox=outbox, erase=_erase)


async def handle_customer_restricted(conn: Any, event: events.CustomerRestricted) -> None:
    """Deliveries about a restricted customer's tickets are held (deliveries.repository.claim_due)."""
    data = event.data
    if data.restricted:  # what this transaction claimed for sending waits for the claim, which holds it
        await handoff.forfeit(conn)
    await repository.restrict(conn, customer_id=data.customer_id, restricted=data.restricted, at=data.at)


PRIVACY_HANDLERS = {"privacy.erasure_requested": handle_erasure_requested,
                    "customer.restricted": handle_customer_restricted}
