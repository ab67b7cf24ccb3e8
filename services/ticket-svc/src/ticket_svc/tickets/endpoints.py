"""Tickets API. One request = one transaction, committed here.

Responses are serialised straight from rows with orjson (declared ``response_model`` keeps
the OpenAPI document exact without paying for a second validation on the hot path).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from helpdesk_common.responses import JSONBytesResponse

from helpdesk_common.app import runtime_of
from helpdesk_common.identity import CurrentPrincipal

from . import service
from .schemas import Priority, Status, TicketCreate, TicketPage, TicketRead

router = APIRouter(prefix="/v1/tickets", tags=["tickets"])

IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=255,
           description="Repeat a create safely: the same key and body return the same ticket."),
]


@router.post("", status_code=201, response_model=TicketRead, summary="Create a ticket")
async def create_ticket(
    request: Request, payload: TicketCreate, principal: CurrentPrincipal, idempotency_key: IdempotencyKey = None
) -> JSONBytesResponse:
    async with runtime_of(request).raw_transaction() as conn:
        result = await service.create_ticket(
            conn, principal=principal, payload=payload, idempotency_key=idempotency_key
        )
    headers = {"Location": f"/v1/tickets/{result.ticket['id']}", "ETag": f'W/"{result.ticket["version"]}"'}
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONBytesResponse(service.to_read(result.ticket), status_code=201, headers=headers)


@router.get("/{ticket_id}", response_model=TicketRead, summary="Read a ticket")
async def get_ticket(request: Request, ticket_id: uuid.UUID, principal: CurrentPrincipal) -> JSONBytesResponse:
    async with runtime_of(request).engine.connect() as conn:
        row = await service.get_visible_ticket(conn, principal=principal, ticket_id=ticket_id)
    return JSONBytesResponse(service.to_read(row._mapping), headers={"ETag": f'W/"{row.version}"'})


@router.get("", response_model=TicketPage, summary="List tickets, newest first")
async def list_tickets(
    request: Request,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    status: Status | None = None,
    priority: Priority | None = None,
    customer_id: uuid.UUID | None = None,
) -> JSONBytesResponse:
    async with runtime_of(request).engine.connect() as conn:
        rows, next_cursor = await service.list_visible_tickets(
            conn, principal=principal, limit=limit, cursor=cursor,
            status=status, priority=priority, customer_id=customer_id,
        )
    return JSONBytesResponse({"items": [service.to_read(r._mapping) for r in rows], "next_cursor": next_cursor})
