"""``POST /v1/kb/customer-tokens``: a customer token for one customer, for whoever shows that
customer the knowledge base signed in (a customer portal's backend, an agent's link). The token
lets its bearer read ``public`` and ``customers`` articles on the public routes (access.py) until
it expires; nothing is stored, so it cannot be revoked before then: keep lifetimes short."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from helpdesk_common.identity import AGENT_ROLES
from helpdesk_common.openapi import problem_responses
from helpdesk_common.problems import Problem
from helpdesk_common.validation import StrictModel

from .access import StaffViewer, customer_token_key, mint_customer_token

router = APIRouter(prefix="/v1/kb", tags=["kb"])
#: 30 days: a token cannot be revoked, so it never lives longer (a deployment may lower it:
#: KB_CUSTOMER_TOKEN_MAX_TTL_MINUTES)
MAX_TTL_MINUTES = 43_200


class CustomerTokenCreate(StrictModel):
    #: the customer (customer-svc's id) the token signs in
    customer_id: uuid.UUID
    #: how long the token lives, in minutes: at most 30 days, or the deployment's lower
    #: ``KB_CUSTOMER_TOKEN_MAX_TTL_MINUTES`` (above it: 422 ``out_of_range``)
    ttl_minutes: Annotated[int, Field(ge=1, le=MAX_TTL_MINUTES)] = 60


class CustomerToken(BaseModel):
    token: str
    token_type: Literal["Bearer"] = "Bearer"
    customer_id: uuid.UUID
    expires_at: datetime
    expires_in: int


@router.post("/customer-tokens", status_code=201, response_model=CustomerToken,
             summary="A customer token (read customers-only articles as this customer)",
             responses=problem_responses(503, _503="Customer tokens are not configured (KB_CUSTOMER_TOKEN_KEY)"))
async def create_customer_token(request: Request, body: CustomerTokenCreate, viewer: StaffViewer) -> dict:
    """For admins, supervisors and agents (editors write articles, they do not act for customers).
    Present the token as ``Authorization: Bearer <token>`` on the public knowledge-base routes."""
    if viewer.role not in AGENT_ROLES:
        raise Problem(403, "forbidden", "Forbidden", "Only admins, supervisors and agents mint customer tokens.")
    settings = request.app.state.settings
    if body.ttl_minutes > settings.customer_token_max_ttl_minutes:
        raise Problem(422, "validation-error", "Validation failed", "ttl_minutes is too long.",
                      errors=[{"field": "body.ttl_minutes", "code": "out_of_range",
                               "message": f"At most {settings.customer_token_max_ttl_minutes} minutes."}])
    key = customer_token_key(settings)
    ttl_s = body.ttl_minutes * 60
    expires = int(time.time()) + ttl_s
    return {"token": mint_customer_token(key, customer_id=body.customer_id, expires=expires),
            "customer_id": body.customer_id, "expires_at": datetime.fromtimestamp(expires, UTC), "expires_in": ttl_s}
