"""Orders: users read; supervisors and admins (and integrations signed in as one) record them."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request

from helpdesk_common.app import runtime_of
from helpdesk_common.identity import CurrentPrincipal
from helpdesk_common.responses import JSONBytesResponse

from . import service
from .schemas import OrderForCustomerIn, OrderIn, OrderPage, OrderRead, PageQuery

router = APIRouter(tags=["orders"])
_RECORD_SUMMARY = ("Record an order, or update it by its external id (201 created, 200 updated or unchanged; "
                   "supervisors and admins)")

_UPDATED = {200: {"model": OrderRead, "description": "The order was known: updated, or unchanged (nothing written)."}}


def _answer(found: dict, outcome: str) -> JSONBytesResponse:
    return JSONBytesResponse(found, status_code=201 if outcome == "created" else 200,
                             headers={"Location": f"/v1/orders/{found['id']}", "X-Order-Outcome": outcome})


@router.post("/v1/customers/{customer_id}/orders", response_model=OrderRead, status_code=201,
             summary=_RECORD_SUMMARY, responses=_UPDATED)
async def record_customer_order(request: Request, customer_id: uuid.UUID, body: OrderIn,
                                principal: CurrentPrincipal) -> JSONBytesResponse:
    service.require_writer(principal)
    async with runtime_of(request).raw_transaction() as conn:
        found, outcome = await service.record(conn, customer_id=customer_id, body=body, principal=principal)
    return _answer(found, outcome)


@router.post("/v1/orders", response_model=OrderRead, status_code=201, responses=_UPDATED, summary=_RECORD_SUMMARY
             + "; the customer by id, by its external id in the same source, or by an identity")
async def record_order(request: Request, body: OrderForCustomerIn, principal: CurrentPrincipal) -> JSONBytesResponse:
    service.require_writer(principal)
    async with runtime_of(request).raw_transaction() as conn:
        customer_id = await service.customer_of(conn, body)
        found, outcome = await service.record(conn, customer_id=customer_id, body=body, principal=principal)
    return _answer(found, outcome)


@router.get("/v1/orders/{order_id}", response_model=OrderRead, summary="Read an order")
async def get_order(request: Request, order_id: uuid.UUID, principal: CurrentPrincipal) -> JSONBytesResponse:
    service.require_reader(principal)
    async with runtime_of(request).raw_connection() as conn:
        found = await service.get(conn, order_id=order_id)
    return JSONBytesResponse(found)


@router.get("/v1/customers/{customer_id}/orders", response_model=OrderPage,
            summary="A customer's orders, newest first (by ordered_at)")
async def list_customer_orders(request: Request, customer_id: uuid.UUID, principal: CurrentPrincipal,
                               query: Annotated[PageQuery, Query()]) -> JSONBytesResponse:
    service.require_reader(principal)
    async with runtime_of(request).raw_connection() as conn:
        found = await service.list_of_customer(conn, customer_id=customer_id, limit=query.limit, cursor=query.cursor)
    return JSONBytesResponse(found)
