"""Ticket exports through the gateway's ``/v1/export``: the incremental export (JSON pages) and
the report downloads (.csv streamed, .xlsx whole). One read per page or batch, no transaction."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field
from starlette.responses import Response, StreamingResponse

from helpdesk_common.app import runtime_of
from helpdesk_common.exports import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE, csv_chunks, xlsx_bytes
from helpdesk_common.identity import CurrentPrincipal
from helpdesk_common.openapi import problem_responses
from helpdesk_common.problems import Problem
from helpdesk_common.responses import JSONBytesResponse
from helpdesk_common.validation import AwareUtcDatetime

from ..conversation.attachments import content_disposition
from ..tickets.endpoints import ListFilters
from . import service
from .columns import COLUMNS, row_of
from .position import MAX_EPOCH
from .schemas import TicketExportPage

router = APIRouter(prefix="/v1/export", tags=["exports"])

#: Zendesk's start_time: whole seconds since 1970, up to the end of year 9999
UnixSeconds = Annotated[int, Field(ge=0, le=MAX_EPOCH)]


@router.get("/tickets", response_model=TicketExportPage, summary="Incremental ticket export (what changed since)",
            description="Tickets in the order their changes committed, resumable by `next_cursor`: every change "
                        "after the cursor is returned once, a ticket changed again appears again. Start with "
                        "`start_time` (Unix seconds or RFC 3339 with offset) or nothing (everything); continue "
                        "with `cursor`. Admins and supervisors export every ticket, agents what their list shows.",
            responses=problem_responses(422, _422="a cursor this service did not sign, or start_time with a cursor"))
async def export_tickets(
    request: Request,
    principal: CurrentPrincipal,
    start_time: Annotated[UnixSeconds | AwareUtcDatetime | None,
                          Query(description="a new export from this time: Unix seconds, or RFC 3339 with offset")] = None,
    cursor: Annotated[str | None, Query(min_length=1, max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONBytesResponse:
    service.check_may_export(principal)
    runtime = runtime_of(request)
    key = service.cursor_key(runtime.settings)
    state = service.start_of(cursor=cursor, start_time=start_time, key=key)
    async with runtime.raw_connection() as conn:
        page = await service.change_page(conn, principal=principal, state=state, limit=limit, key=key)
    service.audit_export(principal, route="export.tickets", rows=len(page.items))
    return JSONBytesResponse({"items": page.items, "next_cursor": page.next_cursor,
                              "end_of_stream": page.end_of_stream})


def _download_headers(extension: str) -> dict[str, str]:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return {"Content-Disposition": content_disposition(f"tickets-{stamp}.{extension}"),
            "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


_CSV_DOC = {200: {"description": "UTF-8 CSV with a byte-order mark, streamed; columns in docs/exports.md",
                  "content": {"text/csv": {"schema": {"type": "string"}}}}}
_XLSX_DOC = {200: {"description": "one sheet, header row first; columns in docs/exports.md",
                   "content": {XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}},
             **problem_responses(422, _422="a filter is invalid, or more tickets match than one workbook holds")}


@router.get("/tickets.csv", response_class=Response, responses=_CSV_DOC,
            summary="Download the tickets a list filter selects, as CSV")
async def download_csv(request: Request, principal: CurrentPrincipal, filters: ListFilters) -> StreamingResponse:
    service.check_may_export(principal)
    rows = service.download_rows(runtime_of(request), principal=principal, filters=filters)
    return StreamingResponse(_csv_stream(rows, principal=principal, filters=filters), media_type=CSV_MEDIA_TYPE,
                             headers=_download_headers("csv"))


async def _csv_stream(tickets: AsyncIterator[dict[str, Any]], *, principal: Any,
                      filters: Any) -> AsyncIterator[bytes]:
    """The BOM and header at once (a client sees the download start), then one chunk per batch;
    the export is audited when the stream ends, with the rows sent (a client that went away early
    got fewer)."""
    sent = 0
    try:
        for chunk in csv_chunks(COLUMNS, ()):
            yield chunk
        batch: list[list[Any]] = []
        async for ticket in tickets:
            batch.append(row_of(ticket))
            if len(batch) == service.DOWNLOAD_BATCH:
                yield _rows_only(batch)
                sent += len(batch)
                batch = []
        if batch:
            yield _rows_only(batch)
            sent += len(batch)
    finally:
        service.audit_export(principal, route="export.tickets.csv", rows=sent, filters=filters)


def _rows_only(rows: list[list[Any]]) -> bytes:
    """The rows as CSV lines, without the BOM and header ``csv_chunks`` puts first."""
    chunks = csv_chunks(COLUMNS, rows, rows_per_chunk=len(rows))
    next(chunks)
    return b"".join(chunks)


@router.get("/tickets.xlsx", response_class=Response, responses=_XLSX_DOC,
            summary="Download the tickets a list filter selects, as an Excel workbook")
async def download_xlsx(request: Request, principal: CurrentPrincipal, filters: ListFilters) -> Response:
    service.check_may_export(principal)
    runtime = runtime_of(request)
    limit = runtime.settings.export_xlsx_max_rows
    rows = [row_of(t) async for t in service.download_rows(runtime, principal=principal, filters=filters,
                                                           max_rows=limit + 1)]
    if len(rows) > limit:
        raise Problem(422, "too-many-rows", "Too many tickets for a workbook",
                      f"More than {limit} tickets match; narrow the filters (created_after, created_before, "
                      "status, team_id...) or download /v1/export/tickets.csv, which streams any number.",
                      max_rows=limit)
    content = await asyncio.to_thread(xlsx_bytes, COLUMNS, rows, sheet_title="tickets")
    service.audit_export(principal, route="export.tickets.xlsx", rows=len(rows), filters=filters)
    return Response(content, media_type=XLSX_MEDIA_TYPE, headers=_download_headers("xlsx"))
