from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request

from helpdesk_common.app import runtime_of
from helpdesk_common.identities import normalize
from helpdesk_common.identity import CurrentPrincipal, require_user
from helpdesk_common.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, page
from helpdesk_common.responses import JSONBytesResponse

from . import repository, service

router = APIRouter(prefix="/v1/customers", tags=["customers"])


@router.get("/{customer_id}", summary="Read a customer with identities")
async def get_customer(request: Request, customer_id: uuid.UUID, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).engine.connect() as conn:
        row, identities = await service.get_customer(conn, customer_id=customer_id)
    return JSONBytesResponse(service.to_read(row, identities, unmasked=service.can_see_pii(principal)))


@router.get("", summary="List customers, newest first")
async def list_customers(
    request: Request,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    email: Annotated[str | None, Query(max_length=254)] = None,
    phone: Annotated[str | None, Query(max_length=32)] = None,
) -> JSONBytesResponse:
    require_user(principal)
    identity = ("email", normalize("email", email)) if email else ("phone", normalize("phone", phone)) if phone else None
    async with runtime_of(request).engine.connect() as conn:
        rows = await repository.list_customers(
            conn, limit=limit + 1, after=decode_cursor(cursor) if cursor else None, identity=identity
        )
        rows, next_cursor = page(rows, limit)
        identities = await repository.identities_of(conn, [r.id for r in rows])
    unmasked = service.can_see_pii(principal)
    return JSONBytesResponse(
        {"items": [service.to_read(r, identities[r.id], unmasked=unmasked) for r in rows], "next_cursor": next_cursor}
    )
