"""Customers for users (channel keys get 403): users read, agents edit names and notes,
supervisors and admins the rest."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request

from helpdesk_common import concurrency
from helpdesk_common.app import ACCEPTS_ANY_QUERY, runtime_of, unknown_query_names
from helpdesk_common.concurrency import IfMatch
from helpdesk_common.identity import CurrentPrincipal, require_user
from helpdesk_common.openapi import problem_responses
from helpdesk_common.problems import Problem
from helpdesk_common.responses import JSONBytesResponse

from ..attributes.schemas import KEY_PATTERN
from ..idempotency import service as idempotency
from ..idempotency.service import IdempotencyKey
from . import service
from .schemas import CustomerCreate, CustomerListQuery, CustomerPage, CustomerRead, CustomerUpdate

router = APIRouter(prefix="/v1/customers", tags=["customers"])
#: what a route naming a merged customer answers (docs/customers.md, "Merge")
MERGED = problem_responses(410, _410="The customer was merged into another: `survivor_id` names it "
                                     "(`customer-merged`).")
etag = concurrency.etag

_LIST_PARAMETERS = frozenset(CustomerListQuery.model_fields)
_ATTRIBUTE_KEY = re.compile(KEY_PATTERN)
MAX_ATTRIBUTE_FILTERS = 10
#: the list takes ``attr.<key>`` parameters besides its declared ones: the query rule is the
#: route's own (``attribute_pairs``), stated in the document as an extension
ATTRIBUTE_FILTERS = {**ACCEPTS_ANY_QUERY, "x-attribute-filters": "attr.<key>=<value>, at most 10"}


def attribute_pairs(request: Request) -> list[tuple[str, str]]:
    """The ``attr.<key>=<value>`` filters of the query; any other undeclared name is a 422
    naming it, as the shared query rule answers on every other route."""
    unknown = unknown_query_names(request.scope.get("query_string") or b"", _LIST_PARAMETERS)
    pairs, bad = [], []
    for name in unknown:
        key = name[len(service.ATTRIBUTE_PREFIX):] if name.startswith(service.ATTRIBUTE_PREFIX) else None
        if key is None or not _ATTRIBUTE_KEY.fullmatch(key):
            bad.append(name)
            continue
        pairs += [(key, value) for value in request.query_params.getlist(name)]
    if bad:
        raise Problem(422, "validation-error", "Validation failed", "Unknown query parameters: " + ", ".join(bad[:10]),
                      errors=[{"field": f"query.{name[:100]}", "message": "unknown query parameter",
                               "code": "extra_forbidden"} for name in bad[:10]])
    if len(pairs) > MAX_ATTRIBUTE_FILTERS:
        raise Problem(422, "validation-error", "Validation failed", f"At most {MAX_ATTRIBUTE_FILTERS} attribute filters.",
                      errors=[{"field": "query.attr", "message": f"at most {MAX_ATTRIBUTE_FILTERS} attribute filters",
                               "code": "too_long"}])
    return pairs


@router.get("", response_model=CustomerPage, openapi_extra=ATTRIBUTE_FILTERS,
            summary="List and search customers, newest first (q, identity, organisation, owner, tag, tier, "
                    "attr.<key>)")
async def list_customers(
    request: Request, principal: CurrentPrincipal, query: Annotated[CustomerListQuery, Query()]
) -> JSONBytesResponse:
    require_user(principal)
    pairs = attribute_pairs(request)
    async with runtime_of(request).raw_connection() as conn:
        body = await service.list_customers(
            conn, principal=principal, limit=query.limit, cursor=query.cursor, email=query.email, phone=query.phone,
            tier=query.tier, q=query.q, organization_id=query.organization_id,
            account_owner_id=query.account_owner_id, tags=query.tag, attribute_pairs=pairs,
            segment=query.segment, risk_band=query.risk_band,
        )
    return JSONBytesResponse(body)


@router.post("", response_model=CustomerRead, status_code=201,
             summary="Create a customer with its identities (supervisors and admins)")
async def create_customer(request: Request, body: CustomerCreate, principal: CurrentPrincipal,
                          idempotency_key: IdempotencyKey = None) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_transaction() as conn:
        found = await idempotency.replay_or_claim(conn, caller=principal.ref, key=idempotency_key,
                                                  scope="customer.create", body=body)
        replayed = found is not None
        if found is None:
            found = await service.create_customer(conn, body=body, principal=principal)
            await idempotency.remember(conn, caller=principal.ref, key=idempotency_key, response=found)
    headers = {"ETag": etag(found["version"]), "Location": f"/v1/customers/{found['id']}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONBytesResponse(found, status_code=201, headers=headers)


# ``:uuid``: only an id reaches these two, so /v1/customers/pii-access (pii/endpoints.py) is not a
# customer id for the methods it does not have (PATCH there answers 405, not a 422 about the id)
@router.get("/{customer_id:uuid}", response_model=CustomerRead, responses=MERGED,
            summary="Read a customer with its identities")
async def get_customer(request: Request, customer_id: uuid.UUID, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_connection() as conn:
        body = await service.get_customer(conn, customer_id=customer_id, principal=principal)
    return JSONBytesResponse(body, headers={"ETag": etag(body["version"])})


@router.patch("/{customer_id:uuid}", response_model=CustomerRead, responses=MERGED,
              summary="Change a customer's profile (If-Match: its version; agents change name and notes only)")
async def update_customer(
    request: Request, customer_id: uuid.UUID, update: CustomerUpdate, principal: CurrentPrincipal,
    if_match: IfMatch = None,
) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_transaction() as conn:
        body = await service.update_customer(conn, customer_id=customer_id, update=update, principal=principal,
                                             if_match=if_match)
    return JSONBytesResponse(body, headers={"ETag": etag(body["version"])})
