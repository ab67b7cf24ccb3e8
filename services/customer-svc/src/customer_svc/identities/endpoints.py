"""A customer's identities by hand: ``POST /v1/customers/{id}/identities``,
``DELETE /v1/customers/{id}/identities/{identity_id}`` (supervisors and admins; If-Match: the
customer's version, which each change moves on)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request

from helpdesk_common.app import runtime_of
from helpdesk_common.concurrency import IfMatch, etag
from helpdesk_common.identity import CurrentPrincipal, require_user
from helpdesk_common.responses import JSONBytesResponse

from ..customers.endpoints import MERGED
from ..customers.schemas import CustomerRead, IdentityIn
from ..idempotency import service as idempotency
from ..idempotency.service import IdempotencyKey
from . import service

router = APIRouter(prefix="/v1/customers/{customer_id}/identities", tags=["customers"])


@router.post("", response_model=CustomerRead, status_code=201,
             summary="Add an identity (unique across customers: 409 when another customer has it)",
             responses={200: {"description": "The customer had the identity already", "model": CustomerRead},
                        **MERGED})
async def add_identity(request: Request, customer_id: uuid.UUID, body: IdentityIn, principal: CurrentPrincipal,
                       if_match: IfMatch = None, idempotency_key: IdempotencyKey = None) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_transaction() as conn:
        found = await idempotency.replay_or_claim(conn, caller=principal.ref, key=idempotency_key,
                                                  scope=f"customer.identity.add:{customer_id}", body=body)
        replayed = found is not None
        added = True
        if found is None:
            found, added = await service.add(conn, customer_id=customer_id, kind=body.kind, value=body.value,
                                             principal=principal, if_match=if_match)
            await idempotency.remember(conn, caller=principal.ref, key=idempotency_key, response=found)
    headers = {"ETag": etag(found["version"])}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONBytesResponse(found, status_code=201 if added else 200, headers=headers)


@router.delete("/{identity_id}", response_model=CustomerRead, responses=MERGED,
               summary="Remove an identity (never the customer's last one: 409)")
async def remove_identity(request: Request, customer_id: uuid.UUID, identity_id: uuid.UUID,
                          principal: CurrentPrincipal, if_match: IfMatch = None) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_transaction() as conn:
        found = await service.remove(conn, customer_id=customer_id, identity_id=identity_id, principal=principal,
                                     if_match=if_match)
    return JSONBytesResponse(found, headers={"ETag": etag(found["version"])})
