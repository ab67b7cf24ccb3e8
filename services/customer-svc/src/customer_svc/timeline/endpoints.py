"""A customer's timeline for users (channel keys get 403)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request

from helpdesk_common.app import runtime_of
from helpdesk_common.identity import CurrentPrincipal, require_user
from helpdesk_common.responses import JSONBytesResponse

from ..customers.endpoints import MERGED
from . import service
from .schemas import TimelinePage, TimelineQuery

router = APIRouter(prefix="/v1/customers", tags=["customers"])


@router.get("/{customer_id}/timeline", response_model=TimelinePage, responses=MERGED,
            summary="Everything that happened to a customer, newest first (kind: kinds or families, comma-separated)")
async def get_timeline(request: Request, customer_id: uuid.UUID, principal: CurrentPrincipal,
                       query: Annotated[TimelineQuery, Query()]) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_connection() as conn:
        body = await service.page(conn, customer_id=customer_id, limit=query.limit,
                                  cursor=query.cursor, kind=query.kind)
    return JSONBytesResponse(body)
