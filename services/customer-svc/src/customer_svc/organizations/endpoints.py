"""Organisations for users (channel keys get 403): users read, supervisors and admins write."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from helpdesk_common.app import runtime_of
from helpdesk_common.concurrency import IfMatch, etag
from helpdesk_common.identity import CurrentPrincipal, require_user
from helpdesk_common.responses import JSONBytesResponse

from ..idempotency import service as idempotency
from ..idempotency.service import IdempotencyKey
from . import service
from .schemas import OrganizationCreate, OrganizationListQuery, OrganizationPage, OrganizationRead, OrganizationUpdate

router = APIRouter(prefix="/v1/organizations", tags=["organizations"])


@router.get("", response_model=OrganizationPage, summary="List organisations, newest first")
async def list_organizations(request: Request, principal: CurrentPrincipal,
                             query: Annotated[OrganizationListQuery, Query()]) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_connection() as conn:
        body = await service.list_page(conn, limit=query.limit, cursor=query.cursor, name=query.name,
                                       domain=query.domain, tier=query.tier)
    return JSONBytesResponse(body)


@router.post("", response_model=OrganizationRead, status_code=201,
             summary="Create an organisation (supervisors and admins)")
async def create_organization(request: Request, body: OrganizationCreate, principal: CurrentPrincipal,
                              idempotency_key: IdempotencyKey = None) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_transaction() as conn:
        found = await idempotency.replay_or_claim(conn, caller=principal.ref, key=idempotency_key,
                                                  scope="organization.create", body=body)
        replayed = found is not None
        if found is None:
            found = await service.create(conn, body=body, principal=principal)
            await idempotency.remember(conn, caller=principal.ref, key=idempotency_key, response=found)
    headers = {"ETag": etag(found["version"]), "Location": f"/v1/organizations/{found['id']}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONBytesResponse(found, status_code=201, headers=headers)


@router.get("/{organization_id}", response_model=OrganizationRead, summary="Read an organisation")
async def get_organization(request: Request, organization_id: uuid.UUID,
                           principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_connection() as conn:
        body = await service.get(conn, organization_id=organization_id)
    return JSONBytesResponse(body, headers={"ETag": etag(body["version"])})


@router.patch("/{organization_id}", response_model=OrganizationRead,
              summary="Change an organisation (supervisors and admins; If-Match: its version)")
async def update_organization(request: Request, organization_id: uuid.UUID, body: OrganizationUpdate,
                              principal: CurrentPrincipal, if_match: IfMatch = None) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_transaction() as conn:
        found = await service.update(conn, organization_id=organization_id, body=body, principal=principal,
                                     if_match=if_match)
    return JSONBytesResponse(found, headers={"ETag": etag(found["version"])})


@router.delete("/{organization_id}", status_code=204,
               summary="Delete an organisation without members (supervisors and admins)")
async def delete_organization(request: Request, organization_id: uuid.UUID, principal: CurrentPrincipal,
                              if_match: IfMatch = None) -> Response:
    require_user(principal)
    async with runtime_of(request).raw_transaction() as conn:
        await service.delete(conn, organization_id=organization_id, principal=principal, if_match=if_match)
    return Response(status_code=204)
