"""KPI reads for users (channels get 403)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request

from helpdesk_common.app import runtime_of
from helpdesk_common.identity import CurrentPrincipal, require_user
from helpdesk_common.responses import JSONBytesResponse

from . import service
from .schemas import Kpis

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])


@router.get("/kpis", response_model=Kpis, summary="Headline KPIs, built from events")
async def get_kpis(
    request: Request,
    principal: CurrentPrincipal,
    tz: Annotated[str, Query(min_length=1, max_length=64, description="IANA zone that defines 'today'",
                             json_schema_extra={"enum": service.zone_names()})] = "UTC",
) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_connection() as conn:
        body = await service.kpis(conn, now=datetime.now(UTC), tz_name=tz)
    return JSONBytesResponse(body)
