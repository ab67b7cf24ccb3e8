"""Form engine API: admins save a ticket type's fields (a new version each time); all users read.

``default`` in the path names the form for tickets without a type.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from helpdesk_common.app import runtime_of
from helpdesk_common.concurrency import IfMatch, check_version, etag_header
from helpdesk_common.identity import CurrentPrincipal, require_user
from helpdesk_common.problems import Problem
from helpdesk_common.responses import JSONBytesResponse

from . import repository, service
from .schemas import FormIn, FormRead

router = APIRouter(prefix="/v1/forms", tags=["forms"])

TicketType = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]


def _key(ticket_type: str) -> str:
    return repository.DEFAULT_TYPE if ticket_type == "default" else ticket_type


def _read(row: Any) -> dict[str, Any]:
    return {"ticket_type": row["ticket_type"] or "default", "version": row["version"], "fields": row["fields"],
            "created_by": row["created_by"], "created_at": row["created_at"]}


@router.get("", response_model=list[FormRead], summary="The latest form of every ticket type")
async def list_forms(request: Request, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_connection() as conn:
        return JSONBytesResponse([_read(r) for r in await repository.list_latest(conn)])


@router.put("/{ticket_type}", response_model=FormRead,
            responses={201: {"model": FormRead, "description": "the first version of this type's form"}},
            summary="Save a new version of a ticket type's form (admin); If-Match: the latest version")
async def save_form(request: Request, ticket_type: TicketType, body: FormIn, principal: CurrentPrincipal,
                    if_match: IfMatch = None) -> JSONBytesResponse:
    """Versions are immutable and each save adds the next; ``If-Match`` names the latest version
    the admin edited (412 when someone saved another since; 0 when the type has no form yet)."""
    require_user(principal, "admin")
    fields = body.model_dump(mode="json")["fields"]
    async with runtime_of(request).raw_transaction() as conn:
        latest = await repository.lock_type(conn, _key(ticket_type))
        check_version(latest, if_match, what="form")
        row = await repository.insert_next(conn, ticket_type=_key(ticket_type), fields=fields,
                                           created_by=principal.ref)
    service.invalidate()
    return JSONBytesResponse(_read(row), status_code=201 if row["version"] == 1 else 200,
                             headers=etag_header(row["version"]))


@router.get("/{ticket_type}", response_model=FormRead, summary="The latest version of a ticket type's form")
async def get_form(request: Request, ticket_type: TicketType, principal: CurrentPrincipal) -> JSONBytesResponse:
    async with runtime_of(request).raw_connection() as conn:
        row = await repository.latest(conn, _key(ticket_type))
    if row is None:
        raise Problem(404, "not-found", "Form not found", f"No form for ticket type {ticket_type!r}.")
    return JSONBytesResponse(_read(row), headers=etag_header(row["version"]))


@router.get("/{ticket_type}/versions/{version}", response_model=FormRead, summary="One version of a form")
async def get_form_version(request: Request, ticket_type: TicketType, version: Annotated[int, Path(ge=1, le=2**31 - 1)],
                           principal: CurrentPrincipal) -> JSONBytesResponse:
    async with runtime_of(request).raw_connection() as conn:
        row = await repository.version(conn, _key(ticket_type), version)
    if row is None:
        raise Problem(404, "not-found", "Form version not found", f"No version {version} of {ticket_type!r}.")
    return JSONBytesResponse(_read(row))
