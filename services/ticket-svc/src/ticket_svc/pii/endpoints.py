"""The audit of unmasked requester reads and exports, for admins: ``GET /v1/tickets/pii-access``
(every ticket, filters) and ``GET /v1/tickets/{id}/pii-access`` (one ticket's). Read-only: rows are
written by ``audit.PiiReadAudit`` and never changed through the API. Reading the audit shows ids
only, so it is not itself audited."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from helpdesk_common.app import runtime_of
from helpdesk_common.identity import CurrentPrincipal, require_user
from helpdesk_common.pagination import decode_id_cursor, encode_id_cursor
from helpdesk_common.responses import JSONBytesResponse

from . import log_repository
from .schemas import PiiAccessPage, PiiAccessQuery

router = APIRouter(prefix="/v1/tickets", tags=["tickets"])
ADMIN = "admin"


def _encode(row_id: int) -> str:
    return encode_id_cursor("ta", row_id)


def _decode(cursor: str) -> int:
    return decode_id_cursor("ta", cursor)


async def _page(request: Request, query: PiiAccessQuery, ticket_id: uuid.UUID | None) -> dict[str, Any]:
    before_id = _decode(query.cursor) if query.cursor else None
    async with runtime_of(request).raw_connection() as conn:
        rows = await log_repository.page(conn, ticket_id=ticket_id, actor=query.actor, purpose=query.purpose,
                                         since=query.since, before_id=before_id, limit=query.limit + 1)
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    return {"items": [{**dict(r), "fields": list(r["fields"])} for r in rows],
            "next_cursor": _encode(rows[-1]["id"]) if more and rows else None}


@router.get("/pii-access", response_model=PiiAccessPage,
            summary="Who saw requesters unmasked or exported them, newest first (admins)")
async def pii_access(request: Request, principal: CurrentPrincipal,
                     query: Annotated[PiiAccessQuery, Query()]) -> JSONBytesResponse:
    require_user(principal, ADMIN)
    return JSONBytesResponse(await _page(request, query, None))


@router.get("/{ticket_id}/pii-access", response_model=PiiAccessPage,
            summary="Who saw this ticket's requester unmasked or exported it, newest first (admins)")
async def ticket_pii_access(request: Request, ticket_id: uuid.UUID, principal: CurrentPrincipal,
                            query: Annotated[PiiAccessQuery, Query()]) -> JSONBytesResponse:
    require_user(principal, ADMIN)
    return JSONBytesResponse(await _page(request, query, ticket_id))
