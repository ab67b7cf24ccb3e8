"""Custom statuses API (admins write; every user reads)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, StringConstraints

from helpdesk_common.app import runtime_of
from helpdesk_common.concurrency import IfMatch, check_version, etag_header
from helpdesk_common.identity import CurrentPrincipal, require_user
from helpdesk_common.problems import Problem
from helpdesk_common.responses import JSONBytesResponse
from helpdesk_common.text import OneLine
from helpdesk_common.validation import Int32, StrictModel

from . import repository

router = APIRouter(prefix="/v1/statuses", tags=["statuses"])

Category = Literal["new", "open", "pending", "on_hold", "solved", "closed"]
Label = OneLine(100)


class StatusIn(StrictModel):
    key: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,47}$")]
    label: Label
    category: Category
    #: the column is an integer: a wider value was a 500 at insert
    position: Int32 = 0


class StatusPatch(StrictModel):
    label: Label | None = None
    active: bool | None = None
    position: Int32 | None = None


class StatusRead(BaseModel):
    id: uuid.UUID
    key: str
    label: str
    category: Category
    active: bool
    position: int
    #: the ETag's version: If-Match on PATCH
    version: int


def _read(row) -> dict:  # type: ignore[no-untyped-def]
    return {k: row[k] for k in ("id", "key", "label", "category", "active", "position", "version")}


@router.get("", response_model=list[StatusRead], summary="List custom statuses")
async def list_statuses(request: Request, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_connection() as conn:
        return JSONBytesResponse([_read(r) for r in await repository.list_all(conn)])


@router.post("", status_code=201, response_model=StatusRead, summary="Create a custom status (admin)")
async def create_status(request: Request, body: StatusIn, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal, "admin")
    if body.key in ("new", "open", "pending", "on_hold", "solved", "closed"):
        raise Problem(422, "validation-error", "Reserved key", "A custom status cannot reuse a category name.",
                      errors=[{"field": "key", "message": "reserved"}])
    async with runtime_of(request).raw_transaction() as conn:
        row = await repository.insert(conn, status_id=uuid.uuid4(), key=body.key, label=body.label,
                                      category=body.category, position=body.position)
    if row is None:
        raise Problem(409, "conflict", "Status exists", f"A status with key {body.key!r} exists.")
    return JSONBytesResponse(_read(row), status_code=201, headers=etag_header(row["version"]))


@router.patch("/{status_id}", response_model=StatusRead,
              summary="Rename, reorder or deactivate (admin); If-Match: its version")
async def update_status(request: Request, status_id: uuid.UUID, body: StatusPatch,
                        principal: CurrentPrincipal, if_match: IfMatch = None) -> JSONBytesResponse:
    require_user(principal, "admin")
    async with runtime_of(request).raw_transaction() as conn:
        current = await repository.lock(conn, status_id)
        if current is None:
            raise Problem(404, "not-found", "Status not found", f"No status {status_id}.")
        check_version(current["version"], if_match, what="status")
        row = await repository.update(
            conn, status_id, label=body.label or current["label"],
            active=current["active"] if body.active is None else body.active,
            position=current["position"] if body.position is None else body.position,
        )
    return JSONBytesResponse(_read(row), headers=etag_header(row["version"]))
