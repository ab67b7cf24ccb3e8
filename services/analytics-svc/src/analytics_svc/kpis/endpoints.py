"""The live KPI board for users (channels get 403), scoped by role like every report (access.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from helpdesk_common.app import runtime_of
from helpdesk_common.identity import CurrentPrincipal
from helpdesk_common.responses import JSONBytesResponse

from .. import access
from ..reports import formats
from ..reports.service import choose
from . import service
from .schemas import Kpis

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])


@router.get("/kpis", response_model=Kpis, responses=formats.DOWNLOAD_RESPONSES,
             summary="Headline KPIs, built from events")
async def get_kpis(
    request: Request,
    principal: CurrentPrincipal,
    tz: Annotated[str, Query(min_length=1, max_length=64, description="IANA zone that defines 'today'",
                             json_schema_extra={"enum": service.zone_names()})] = "UTC",
    team_id: Annotated[uuid.UUID | None, Query(description="one team's board (within the caller's scope)")] = None,
    format: Annotated[str, Query(max_length=8, description="json (default), csv or xlsx",
                                 json_schema_extra={"enum": list(formats.FORMATS)})] = "json",
) -> Response:
    fmt = choose("format", format, formats.FORMATS)
    service.zone(tz)  # a bad zone is a 422 before anything is looked up
    scope = await access.caller_scope(request, principal)
    selection = access.filtered_selection(scope, team_id=team_id, agent_id=None)
    async with runtime_of(request).raw_connection() as conn:
        body = await service.kpis(conn, now=datetime.now(UTC), tz_name=tz, selection=selection)
    if fmt == "json":
        return JSONBytesResponse(body)
    header, rows = service.board_rows(body)
    return formats.download(fmt, name="kpis", header=header, rows=rows)
