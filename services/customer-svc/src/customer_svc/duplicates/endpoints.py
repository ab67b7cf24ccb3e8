"""Duplicate suggestions for supervisors and admins: ``GET /v1/customers/{id}/duplicates``,
``GET /v1/customer-duplicates``, ``POST /v1/customer-duplicates/dismiss``."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from helpdesk_common.app import runtime_of
from helpdesk_common.identity import CurrentPrincipal, require_user
from helpdesk_common.responses import JSONBytesResponse

from ..customers.endpoints import MERGED
from . import service
from .schemas import CandidatePage, DismissIn, PairPage, PairQuery

router = APIRouter(tags=["customers"])


@router.get("/v1/customers/{customer_id}/duplicates", response_model=CandidatePage, responses=MERGED,
            summary="Customers that are probably the same person, most probable first (supervisors and admins)")
async def customer_duplicates(request: Request, customer_id: uuid.UUID,
                              principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal)
    service.require_supervisor(principal)
    async with runtime_of(request).raw_connection() as conn:
        body = await service.candidates(conn, customer_id=customer_id, principal=principal)
    return JSONBytesResponse(body)


@router.get("/v1/customer-duplicates", response_model=PairPage,
            summary="Probable duplicate pairs across the base, strongest reason first (supervisors and admins)")
async def duplicate_pairs(request: Request, principal: CurrentPrincipal,
                          query: Annotated[PairQuery, Query()]) -> JSONBytesResponse:
    require_user(principal)
    service.require_supervisor(principal)
    async with runtime_of(request).raw_connection() as conn:
        body = await service.pairs(conn, limit=query.limit, cursor=query.cursor, principal=principal)
    return JSONBytesResponse(body)


@router.post("/v1/customer-duplicates/dismiss", status_code=204, response_class=Response,
             summary="Two customers are two people: no longer suggested together (supervisors and admins)")
async def dismiss(request: Request, body: DismissIn, principal: CurrentPrincipal) -> Response:
    require_user(principal)
    service.require_supervisor(principal)
    async with runtime_of(request).raw_transaction() as conn:
        await service.dismiss(conn, first_id=body.first_id, second_id=body.second_id, principal=principal)
    return Response(status_code=204)
