"""Process-definition API: admins save and deactivate a ticket type's process; every user reads.

One request, one transaction. Versions are immutable: a save or a deactivation appends one, and
``If-Match`` names the latest version the admin based the change on (412 when another change
came first; 0 when the type never had a process), exactly as forms do.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Request
from starlette.responses import Response

from helpdesk_common.app import runtime_of
from helpdesk_common.concurrency import IfMatch, etag_header
from helpdesk_common.identity import CurrentPrincipal, require_user
from helpdesk_common.problems import Problem
from helpdesk_common.responses import JSONBytesResponse

from . import repository, service
from .definitions import ProcessIn
from .schemas import ProcessPage, ProcessRead

router = APIRouter(prefix="/v1/processes", tags=["processes"])

TicketType = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$",
                                 description="the ticket type (a ticket's `type`)")]
Version = Annotated[int, Path(ge=1, le=2**31 - 1)]
#: docs/workflow.md's refund: the example schemathesis and readers start from (it names no team,
#: so any stack accepts it)
REFUND_EXAMPLE = {"steps": [
    {"key": "approval", "name": "Supervisor approval", "kind": "approval",
     "when": {"conditions": [{"field": "custom_fields.refund_amount", "op": "gt", "value": 1000}]},
     "approvers": {"roles": ["supervisor"]}, "rule": "any", "on_reject": "close", "target_minutes": 240},
    {"key": "refund", "name": "Pay the refund", "kind": "task", "target_minutes": 480},
    {"key": "confirm", "name": "Customer confirms", "kind": "customer_confirmation", "timeout_minutes": 2880,
     "on_timeout": "close", "via": "reply_or_link"},
]}


@router.get("", response_model=ProcessPage, summary="The current process of every ticket type that has one")
async def list_processes(request: Request, principal: CurrentPrincipal,
                         limit: Annotated[int, Query(ge=1, le=100)] = 50,
                         cursor: Annotated[str | None, Query(max_length=128, pattern=r"^[A-Za-z0-9_\-]+$")] = None,
                         ) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_connection() as conn:
        rows, next_cursor = await service.page(conn, cursor=cursor, limit=limit)
    return JSONBytesResponse({"items": [service.to_read(r) for r in rows], "next_cursor": next_cursor})


@router.put("/{ticket_type}", response_model=ProcessRead,
            responses={201: {"model": ProcessRead, "description": "the first version of this type's process"}},
            summary="Save a new version of a ticket type's process (admin); If-Match: the latest version")
async def save_process(request: Request, ticket_type: TicketType,
                       body: Annotated[ProcessIn, Body(examples=[REFUND_EXAMPLE])], principal: CurrentPrincipal,
                       if_match: IfMatch = None) -> JSONBytesResponse:
    """Tickets already running a process keep their version; new ones start with this one.
    A deactivated type is activated again by a save (``If-Match``: the deactivation's version)."""
    require_user(principal, "admin")
    async with runtime_of(request).raw_transaction() as conn:
        row = await service.save(conn, ticket_type=ticket_type, body=body, if_match=if_match,
                                 created_by=principal.ref)
    return JSONBytesResponse(service.to_read(row), status_code=201 if row["version"] == 1 else 200,
                             headers=etag_header(row["version"]))


@router.get("/{ticket_type}", response_model=ProcessRead, summary="The current version of a ticket type's process")
async def get_process(request: Request, ticket_type: TicketType, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_connection() as conn:
        row = await service.current(conn, ticket_type)
    if row is None:
        raise service.not_found(ticket_type)
    return JSONBytesResponse(service.to_read(row), headers=etag_header(row["version"]))


@router.get("/{ticket_type}/versions/{version}", response_model=ProcessRead,
            summary="One version of a ticket type's process (also deactivated and superseded ones)")
async def get_process_version(request: Request, ticket_type: TicketType, version: Version,
                              principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_connection() as conn:
        row = await repository.version(conn, ticket_type, version)
    if row is None:
        raise Problem(404, "not-found", "Process version not found", f"No version {version} of {ticket_type!r}.")
    return JSONBytesResponse(service.to_read(row))


@router.delete("/{ticket_type}", status_code=204,
               summary="Deactivate a ticket type's process (admin): new tickets start none; running ones finish theirs")
async def delete_process(request: Request, ticket_type: TicketType, principal: CurrentPrincipal,
                         if_match: IfMatch = None) -> Response:
    require_user(principal, "admin")
    async with runtime_of(request).raw_transaction() as conn:
        row = await service.deactivate(conn, ticket_type=ticket_type, if_match=if_match, created_by=principal.ref)
    return Response(status_code=204, headers=etag_header(row["version"]))
