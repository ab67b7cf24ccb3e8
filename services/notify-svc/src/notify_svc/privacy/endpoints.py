"""``GET /v1/privacy/customers/{id}/export`` (admins): what notify-svc holds on a customer, for
customer-svc's export bundle (``helpdesk_common.erasure.export_router``)."""

from __future__ import annotations

import uuid
from typing import Any

from helpdesk_common.erasure import export_router

from . import service


async def _export(conn: Any, customer_id: uuid.UUID) -> dict[str, Any]:
    return await service.export(conn, customer_id=customer_id)


router = export_router(service="notify-svc", export=_export)
