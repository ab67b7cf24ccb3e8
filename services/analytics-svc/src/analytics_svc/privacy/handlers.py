"""``privacy.erasure_requested`` in its own consumer group (privacy.events is not a fold topic: a
rebuild replays the fold topics only), under the rebuild's shared swap lock."""

from __future__ import annotations

from typing import Any

from helpdesk_common import erasure

from ..db import outbox

SOURCE = "analytics-svc"
GROUP = "analytics-svc.privacy"


async def _erase(conn: Any, customer_id: Any) -> None:
    # nothing personal to anonymise (the package's docstring); its outbox holds no customer event
    await erasure.purge_published_outbox(conn, table=outbox.name, customer_id=customer_id, found=[])


handle_erasure_requested = erasure.raw_erasure_handler(service=SOURCE, outbox=outbox, erase=_erase)

PRIVACY_HANDLERS = {"privacy.erasure_requested": handle_erasure_requested}
