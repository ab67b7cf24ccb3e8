"""Policies: admins write, users read, channel keys get 403. One request, one transaction."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from helpdesk_common.app import runtime_of
from helpdesk_common.identity import CurrentPrincipal
from helpdesk_common.responses import JSONBytesResponse

from ..http import (DEFAULT, Cursor, IdempotencyKey, Limit, decode_position_cursor, encode_cursor, etag,
                    expected_versions, require_admin, require_reader)
from ..timers import repository as timers
from ..timers.policies import default_policy_table
from ..idempotency import service as idempotency
from . import repository, service
from .schemas import DefaultPolicyRead, PolicyIn, PolicyList, PolicyRead

router = APIRouter(prefix="/v1/sla/policies", tags=["sla policies"])


@router.get("/default", response_model=DefaultPolicyRead, summary="The built-in policy (no other matches)")
async def default_policy(principal: CurrentPrincipal) -> JSONBytesResponse:
    require_reader(principal)
    return JSONBytesResponse(default_policy_table())


@router.get("", response_model=PolicyList, summary="Policies in matching order")
async def list_policies(request: Request, principal: CurrentPrincipal, limit: Limit = DEFAULT,
                        cursor: Cursor = None) -> JSONBytesResponse:
    require_reader(principal)
    after = decode_position_cursor(cursor) if cursor else None
    async with runtime_of(request).engine.connect() as conn:
        rows = await repository.page(conn, after=after, limit=limit)
    more = len(rows) > limit
    rows = rows[:limit]
    return JSONBytesResponse({"items": [service.as_read(r) for r in rows],
                              "next_cursor": encode_cursor(rows[-1].position, rows[-1].id) if more else None})


@router.post("", response_model=PolicyRead, status_code=201, summary="Create a policy")
async def create_policy(request: Request, body: PolicyIn, principal: CurrentPrincipal,
                        idempotency_key: IdempotencyKey = None) -> JSONBytesResponse:
    require_admin(principal)
    async with runtime_of(request).transaction() as conn:
        replayed = await idempotency.replay_or_claim(conn, caller=principal.ref, key=idempotency_key,
                                                     scope="policy.create", body=body)
        if replayed is not None:
            return JSONBytesResponse(replayed, status_code=201, headers={
                "Idempotent-Replayed": "true", "ETag": etag(replayed["version"]),
                "Location": f"{request.url.path}/{replayed['id']}"})
        policy = await service.create(conn, body=body)
        await idempotency.remember(conn, caller=principal.ref, key=idempotency_key, response=policy)
        await timers.bump_generation(conn)
    return JSONBytesResponse(policy, status_code=201, headers={"ETag": etag(policy["version"]),
                                                                "Location": f"/v1/sla/policies/{policy['id']}"})


@router.get("/{policy_id:uuid}", response_model=PolicyRead, summary="One policy")
async def get_policy(request: Request, policy_id: uuid.UUID, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_reader(principal)
    async with runtime_of(request).engine.connect() as conn:
        row = await repository.get(conn, policy_id)
    if row is None:
        raise service.not_found()
    return JSONBytesResponse(service.as_read(row), headers={"ETag": etag(row.version)})


@router.put("/{policy_id:uuid}", response_model=PolicyRead, summary="Replace a policy (If-Match: its version)")
async def replace_policy(request: Request, policy_id: uuid.UUID, body: PolicyIn,
                         principal: CurrentPrincipal) -> JSONBytesResponse:
    require_admin(principal)
    async with runtime_of(request).transaction() as conn:
        policy = await service.replace(conn, policy_id=policy_id, body=body,
                                       expected_versions=expected_versions(request))
        await timers.bump_generation(conn)
    return JSONBytesResponse(policy, headers={"ETag": etag(policy["version"])})


@router.delete("/{policy_id:uuid}", status_code=204, summary="Delete a policy (If-Match: its version)")
async def delete_policy(request: Request, policy_id: uuid.UUID, principal: CurrentPrincipal) -> Response:
    require_admin(principal)
    async with runtime_of(request).transaction() as conn:
        await service.delete(conn, policy_id=policy_id, expected_versions=expected_versions(request))
        await timers.bump_generation(conn)
    return Response(status_code=204)
