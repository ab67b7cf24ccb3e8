"""Saved views API (per agent)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from starlette.responses import Response

from helpdesk_common.app import runtime_of
from helpdesk_common.identity import CurrentPrincipal, require_user
from helpdesk_common.problems import Problem
from helpdesk_common.responses import JSONBytesResponse

from . import repository
from .schemas import ViewIn, ViewRead

router = APIRouter(prefix="/v1/views", tags=["views"])


def _read(row) -> dict:  # type: ignore[no-untyped-def]
    return {k: row[k] for k in ("id", "name", "filters", "position", "created_at")}


@router.post("", status_code=201, response_model=ViewRead, summary="Save a view (use it as GET /v1/tickets?view_id=)")
async def create_view(request: Request, body: ViewIn, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_transaction() as conn:
        row = await repository.insert(conn, view_id=uuid.uuid4(), owner=principal.ref, name=body.name,
                                      filters=body.filters.model_dump(mode="json", exclude_none=True),
                                      position=body.position)
    if row is None:
        raise Problem(409, "conflict", "View exists", f"You already have a view named {body.name!r}.")
    return JSONBytesResponse(_read(row), status_code=201)


@router.get("", response_model=list[ViewRead], summary="My saved views")
async def list_views(request: Request, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_connection() as conn:
        return JSONBytesResponse([_read(r) for r in await repository.of_owner(conn, principal.ref)])


@router.delete("/{view_id}", status_code=204, summary="Delete one of my views")
async def delete_view(request: Request, view_id: uuid.UUID, principal: CurrentPrincipal) -> Response:
    require_user(principal)
    async with runtime_of(request).raw_transaction() as conn:
        if not await repository.delete(conn, view_id=view_id, owner=principal.ref):
            raise Problem(404, "not-found", "View not found", f"No saved view {view_id}.")
    return Response(status_code=204)
