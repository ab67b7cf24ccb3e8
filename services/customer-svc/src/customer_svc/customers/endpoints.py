"""Customer reads and edits for users (channel keys get 403)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request

from helpdesk_common import concurrency
from helpdesk_common.app import runtime_of
from helpdesk_common.concurrency import IfMatch
from helpdesk_common.identity import CurrentPrincipal, require_user
from helpdesk_common.responses import JSONBytesResponse

from . import service
from .schemas import CustomerListQuery, CustomerPage, CustomerRead, CustomerUpdate

router = APIRouter(prefix="/v1/customers", tags=["customers"])


@router.get("", response_model=CustomerPage, summary="List customers, newest first")
async def list_customers(
    request: Request, principal: CurrentPrincipal, query: Annotated[CustomerListQuery, Query()]
) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_connection() as conn:
        body = await service.list_customers(
            conn, principal=principal, limit=query.limit, cursor=query.cursor, email=query.email, phone=query.phone,
            tier=query.tier,
        )
    return JSONBytesResponse(body)


@router.get("/{customer_id}", response_model=CustomerRead, summary="Read a customer with its identities")
async def get_customer(request: Request, customer_id: uuid.UUID, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_connection() as conn:
        body = await service.get_customer(conn, customer_id=customer_id, principal=principal)
    return JSONBytesResponse(body, headers={"ETag": etag(body["version"])})


@router.patch("/{customer_id}", response_model=CustomerRead,
              summary="Change a customer's name or tier (If-Match: its version; the tier needs a supervisor)")
async def update_customer(
    request: Request, customer_id: uuid.UUID, update: CustomerUpdate, principal: CurrentPrincipal,
    if_match: IfMatch = None,
) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_transaction() as conn:
        body = await service.update_customer(conn, customer_id=customer_id, update=update, principal=principal,
                                             if_match=if_match)
    return JSONBytesResponse(body, headers={"ETag": etag(body["version"])})


etag = concurrency.etag
