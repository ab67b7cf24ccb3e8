"""The audit of unmasked reads and exports, for admins: ``GET /v1/customers/pii-access`` (every
customer, filters) and ``GET /v1/customers/{id}/pii-access`` (one customer's). Read-only: the
rows are written by ``access.shown`` / ``access.exported`` and never changed through the API."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from helpdesk_common.app import runtime_of
from helpdesk_common.identity import CurrentPrincipal, require_user
from helpdesk_common.pagination import decode_id_cursor, encode_id_cursor
from helpdesk_common.responses import JSONBytesResponse

from . import repository
from .schemas import CustomerPiiAccessQuery, PiiAccessPage, PiiAccessQuery

router = APIRouter(prefix="/v1/customers", tags=["customers"])
ADMIN = "admin"


def _encode(row_id: int) -> str:
    return encode_id_cursor("pa", row_id)


def _decode(cursor: str) -> int:
    return decode_id_cursor("pa", cursor)


async def _page(request: Request, query: PiiAccessQuery, customer_id: uuid.UUID | None) -> dict[str, Any]:
    async with runtime_of(request).raw_connection() as conn:
        rows = await repository.access_log(
            conn, customer_id=customer_id, actor=query.actor, purpose=query.purpose, since=query.since,
            before_id=_decode(query.cursor) if query.cursor else None, limit=query.limit + 1)
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    return {"items": [{**dict(r), "fields": list(r["fields"])} for r in rows],
            "next_cursor": _encode(rows[-1]["id"]) if more and rows else None}


@router.get("/pii-access", response_model=PiiAccessPage,
            summary="Who saw customers' identities unmasked or exported them, newest first (admins)")
async def pii_access(request: Request, principal: CurrentPrincipal,
                     query: Annotated[PiiAccessQuery, Query()]) -> JSONBytesResponse:
    require_user(principal, ADMIN)
    return JSONBytesResponse(await _page(request, query, None))


@router.get("/{customer_id}/pii-access", response_model=PiiAccessPage,
            summary="Who saw this customer's identities unmasked or exported them, newest first (admins)")
async def customer_pii_access(request: Request, customer_id: uuid.UUID, principal: CurrentPrincipal,
                              query: Annotated[CustomerPiiAccessQuery, Query()]) -> JSONBytesResponse:
    require_user(principal, ADMIN)
    return JSONBytesResponse(await _page(request, query, customer_id))
