"""Merge (supervisors and admins): ``POST /v1/customers/{id}/merge``; an identity split off
again: ``POST /v1/customers/{id}/identities/{identity_id}/unmerge``."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request

from helpdesk_common.app import runtime_of
from helpdesk_common.concurrency import etag
from helpdesk_common.identity import CurrentPrincipal, require_user
from helpdesk_common.responses import JSONBytesResponse

from ..customers.endpoints import MERGED
from ..customers.schemas import CustomerRead
from ..idempotency import service as idempotency
from ..idempotency.service import IdempotencyKey
from . import service
from .schemas import MergeIn, SplitIn

router = APIRouter(prefix="/v1/customers/{customer_id}", tags=["customers"])


def _answer(found: dict, *, replayed: bool, status_code: int = 200) -> JSONBytesResponse:
    headers = {"ETag": etag(found["version"]), "Location": f"/v1/customers/{found['id']}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONBytesResponse(found, status_code=status_code, headers=headers)


@router.post("/merge", response_model=CustomerRead,
             summary="Merge source_id into this customer (supervisors and admins); the survivor")
async def merge_customer(request: Request, customer_id: uuid.UUID, body: MergeIn, principal: CurrentPrincipal,
                         idempotency_key: IdempotencyKey = None) -> JSONBytesResponse:
    require_user(principal)
    service.require_supervisor(principal, "merge customers")
    async with runtime_of(request).raw_transaction() as conn:
        found = await idempotency.replay_or_claim(conn, caller=principal.ref, key=idempotency_key,
                                                  scope=f"customer.merge:{customer_id}", body=body)
        replayed = found is not None
        if found is None:
            found = await service.merge(conn, survivor_id=customer_id, merged_id=body.source_id, principal=principal)
            await idempotency.remember(conn, caller=principal.ref, key=idempotency_key, response=found)
    return _answer(found, replayed=replayed)


@router.post("/identities/{identity_id}/unmerge", response_model=CustomerRead, status_code=201,
             responses={200: {"description": "Moved to target_customer_id", "model": CustomerRead}, **MERGED},
             summary="Split an identity off onto another or a new customer (supervisors and admins); "
                     "the customer that holds it now")
async def split_identity(request: Request, customer_id: uuid.UUID, identity_id: uuid.UUID, body: SplitIn,
                         principal: CurrentPrincipal, idempotency_key: IdempotencyKey = None) -> JSONBytesResponse:
    require_user(principal)
    service.require_supervisor(principal, "split identities off customers")
    async with runtime_of(request).raw_transaction() as conn:
        found = await idempotency.replay_or_claim(
            conn, caller=principal.ref, key=idempotency_key,
            scope=f"customer.identity.unmerge:{customer_id}:{identity_id}", body=body)
        replayed, created = found is not None, True
        if found is None:
            found, created = await service.split_identity(conn, customer_id=customer_id, identity_id=identity_id,
                                                 target_id=body.target_customer_id, name=body.name,
                                                 principal=principal)
            await idempotency.remember(conn, caller=principal.ref, key=idempotency_key, response=found)
    return _answer(found, replayed=replayed, status_code=201 if created else 200)
