"""``privacy.erasure_requested`` in the gateway's stream consumer transaction (a bare asyncpg
connection): forget the person's stream rows, then acknowledge (a redelivery finds nothing and
acknowledges again)."""

from __future__ import annotations

import uuid
from typing import Any

from helpdesk_common import erasure

from ..db import outbox
from . import repository

SOURCE = "gateway"


async def _forget_stream_rows(conn: Any, customer_id: uuid.UUID) -> None:
    ticket_ids, found = [], set()
    for row in await repository.requesters(conn, customer_id):
        ticket_ids.append(row["ticket_id"])
        found |= set(erasure.needles(name=row["name"], identities=[
            (k, row[k]) for k in repository.IDENTITY_FIELDS if row[k]]))
    await repository.forget(conn, customer_id=customer_id, ticket_ids=ticket_ids, found=sorted(found))


handle_erasure_requested = erasure.raw_erasure_handler(service=SOURCE, outbox=outbox, erase=_forget_stream_rows)

PRIVACY_HANDLERS = {"privacy.erasure_requested": handle_erasure_requested}
