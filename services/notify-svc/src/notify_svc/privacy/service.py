"""notify-svc's erasure of one customer (in its consumer's transaction) and its export."""

from __future__ import annotations

import uuid
from typing import Any

from helpdesk_common import erasure

from ..db import outbox
from . import repository

SOURCE = "notify-svc"


async def _person(conn: Any, customer_id: uuid.UUID) -> tuple[list[uuid.UUID], list[str]]:
    """The person's tickets (notify-svc's projection) and needles: the requester's name and
    addresses, and where surveys for the customer were sent."""
    found: set[str] = set()
    ids = []
    for row in await repository.tickets(conn, customer_id):
        ids.append(row["ticket_id"])
        requester = row["requester"] or {}
        found |= set(erasure.needles(name=requester.get("name"), identities=[
            (k, requester.get(k)) for k in ("email", "phone", "wechat_openid", "external_id") if requester.get(k)]))
    found |= set(erasure.needles(name=None, identities=[("address", d) for d in
                                                         await repository.survey_destinations(conn, customer_id)]))
    found.discard(erasure.REDACTED)
    return ids, sorted(found, key=lambda n: (-len(n), n))


async def erase(conn: Any, *, customer_id: uuid.UUID) -> dict[str, int]:
    ids, found = await _person(conn, customer_id)
    counts = await repository.erase(conn, customer_id=customer_id, ticket_ids=ids, found=found)
    counts["outbox"] = await erasure.purge_published_outbox(conn, table=outbox.name, customer_id=customer_id,
                                                            found=found)
    return counts


async def export(conn: Any, *, customer_id: uuid.UUID) -> dict[str, Any]:
    ids, found = await _person(conn, customer_id)
    return await repository.export(conn, customer_id=customer_id, ticket_ids=ids, found=found)
