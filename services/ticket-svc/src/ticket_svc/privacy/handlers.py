"""``privacy.erasure_requested`` in the projections consumer's transaction: anonymise, then
acknowledge (a redelivery finds nothing left and acknowledges again)."""

from __future__ import annotations

from typing import Any

from helpdesk_common import erasure

from ..db import outbox
from . import service


async def _erase(conn: Any, customer_id: Any) -> None:
    await service.erase(conn, customer_id=customer_id)


handle_erasure_requested = erasure.raw_erasure_handler(service=service.SOURCE, outbox=outbox, erase=_erase)


PRIVACY_HANDLERS = {"privacy.erasure_requested": handle_erasure_requested}
