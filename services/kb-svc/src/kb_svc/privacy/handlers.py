"""``privacy.erasure_requested`` in kb-svc's consumer transaction: anonymise, then acknowledge
(a redelivery finds nothing left and acknowledges again)."""

from __future__ import annotations

from typing import Any

from helpdesk_common import erasure

from ..db import outbox
from . import repository

SOURCE = "kb-svc"


async def _erase(conn: Any, customer_id: Any) -> None:
    await repository.erase(conn, customer_id)
    await erasure.purge_published_outbox(conn, table=outbox.name, customer_id=customer_id, found=[])


handle_erasure_requested = erasure.raw_erasure_handler(service=SOURCE, outbox=outbox, erase=_erase)

PRIVACY_HANDLERS = {"privacy.erasure_requested": handle_erasure_requested}
