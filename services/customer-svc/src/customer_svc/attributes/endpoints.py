"""Attribute definitions of customers (``/v1/customer-attributes``) and organisations
(``/v1/organization-attributes``): admins write, users read, channel keys get 403."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from helpdesk_common.app import runtime_of
from helpdesk_common.concurrency import IfMatch, etag
from helpdesk_common.identity import CurrentPrincipal, require_user
from helpdesk_common.responses import JSONBytesResponse

from ..idempotency import service as idempotency
from ..idempotency.service import IdempotencyKey
from . import service
from .schemas import KEY_PATTERN, AttributeCreate, AttributeList, AttributeRead, AttributeUpdate

Key = Annotated[str, Path(pattern=KEY_PATTERN, description="the attribute's key")]


def build_router(scope: str, prefix: str, owner: str) -> APIRouter:
    router = APIRouter(prefix=prefix, tags=[f"{owner} attributes"])

    @router.get("", response_model=AttributeList, summary=f"Attribute definitions of {owner}s, in display order",
                operation_id=f"list_{scope}_attributes")
    async def list_definitions(request: Request, principal: CurrentPrincipal) -> JSONBytesResponse:
        require_user(principal)
        async with runtime_of(request).raw_connection() as conn:
            return JSONBytesResponse(await service.list_definitions(conn, scope=scope))

    @router.post("", response_model=AttributeRead, status_code=201, summary=f"Define a {owner} attribute (admins)",
                 operation_id=f"create_{scope}_attribute")
    async def create_definition(request: Request, body: AttributeCreate, principal: CurrentPrincipal,
                                idempotency_key: IdempotencyKey = None) -> JSONBytesResponse:
        require_user(principal)
        async with runtime_of(request).raw_transaction() as conn:
            found = await idempotency.replay_or_claim(conn, caller=principal.ref, key=idempotency_key,
                                                      scope=f"{scope}-attribute.create", body=body)
            replayed = found is not None
            if found is None:
                found = await service.create_definition(conn, scope=scope, body=body, principal=principal)
                await idempotency.remember(conn, caller=principal.ref, key=idempotency_key, response=found)
        headers = {"ETag": etag(found["version"]), "Location": f"{prefix}/{found['key']}"}
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return JSONBytesResponse(found, status_code=201, headers=headers)

    @router.get("/{key}", response_model=AttributeRead, summary=f"One {owner} attribute definition",
                operation_id=f"get_{scope}_attribute")
    async def get_definition(request: Request, key: Key, principal: CurrentPrincipal) -> JSONBytesResponse:
        require_user(principal)
        async with runtime_of(request).raw_connection() as conn:
            body = await service.get_definition(conn, scope=scope, key=key)
        return JSONBytesResponse(body, headers={"ETag": etag(body["version"])})

    @router.patch("/{key}", response_model=AttributeRead,
                  summary=f"Change a {owner} attribute's label, options, required or position (admins)",
                  operation_id=f"update_{scope}_attribute")
    async def update_definition(request: Request, key: Key, body: AttributeUpdate, principal: CurrentPrincipal,
                                if_match: IfMatch = None) -> JSONBytesResponse:
        require_user(principal)
        async with runtime_of(request).raw_transaction() as conn:
            found = await service.update_definition(conn, scope=scope, key=key, body=body, principal=principal,
                                                    if_match=if_match)
        return JSONBytesResponse(found, headers={"ETag": etag(found["version"])})

    @router.delete("/{key}", status_code=204,
                   summary=f"Delete a {owner} attribute no {owner} holds a value of (admins)",
                   operation_id=f"delete_{scope}_attribute")
    async def delete_definition(request: Request, key: Key, principal: CurrentPrincipal,
                                if_match: IfMatch = None) -> Response:
        require_user(principal)
        async with runtime_of(request).raw_transaction() as conn:
            await service.delete_definition(conn, scope=scope, key=key, principal=principal, if_match=if_match)
        return Response(status_code=204)

    return router


customer_attributes = build_router("customer", "/v1/customer-attributes", "customer")
organization_attributes = build_router("organization", "/v1/organization-attributes", "organization")
