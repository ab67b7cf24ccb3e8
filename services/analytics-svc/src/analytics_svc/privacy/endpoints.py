"""``GET /v1/privacy/customers/{id}/export`` (admins): the read model's rows keyed to a customer,
for customer-svc's export bundle. Outside the gateway's proxy table (``/v1/privacy`` is
customer-svc's)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request

from helpdesk_common.app import runtime_of
from helpdesk_common.identity import CurrentPrincipal, require_user
from helpdesk_common.responses import JSONBytesResponse

from . import repository

router = APIRouter(prefix="/v1/privacy", tags=["privacy"])


@router.get("/customers/{customer_id}/export", summary="What analytics-svc holds on a customer (admins)")
async def export_customer(request: Request, customer_id: uuid.UUID, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal, "admin")
    async with runtime_of(request).raw_transaction() as conn:
        return JSONBytesResponse(await repository.export(conn, customer_id))
