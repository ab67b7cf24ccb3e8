"""Behaviour events of a customer: users read; supervisors and admins (integrations) record."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request

from helpdesk_common.app import runtime_of
from helpdesk_common.identity import CurrentPrincipal
from helpdesk_common.responses import JSONBytesResponse

from ..orders.schemas import PageQuery
from ..orders.service import require_reader, require_writer
from . import service
from .schemas import InteractionIn, InteractionPage, InteractionRead

router = APIRouter(prefix="/v1/customers/{customer_id}/interactions", tags=["interactions"])


@router.post("", response_model=InteractionRead, status_code=201,
             responses={200: {"model": InteractionRead, "description": "Recorded before under this external id."}},
             summary="Record a behaviour event (201; 200 when its external id was recorded before)")
async def record_interaction(request: Request, customer_id: uuid.UUID, body: InteractionIn,
                             principal: CurrentPrincipal) -> JSONBytesResponse:
    require_writer(principal)
    async with runtime_of(request).raw_transaction() as conn:
        found, created = await service.record(conn, customer_id=customer_id, body=body, principal=principal)
    return JSONBytesResponse(found, status_code=201 if created else 200)


@router.get("", response_model=InteractionPage, summary="A customer's behaviour events, newest first")
async def list_interactions(request: Request, customer_id: uuid.UUID, principal: CurrentPrincipal,
                            query: Annotated[PageQuery, Query()]) -> JSONBytesResponse:
    require_reader(principal)
    async with runtime_of(request).raw_connection() as conn:
        found = await service.list_of_customer(conn, customer_id=customer_id, limit=query.limit,
                                               cursor=query.cursor, principal=principal)
    return JSONBytesResponse(found)
