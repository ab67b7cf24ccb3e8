"""The customer 360 view for users (channel keys get 403)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from functools import lru_cache

from fastapi import APIRouter, Request

from helpdesk_common.app import runtime_of
from helpdesk_common.identity import CurrentPrincipal, require_user
from helpdesk_common.responses import JSONBytesResponse

from ..insights.settings import RfmSettings
from ..scoring.settings import InsightRunSettings
from ..customers.endpoints import MERGED
from . import service
from .schemas import Customer360

router = APIRouter(prefix="/v1/customers", tags=["customers"])


@lru_cache
def money() -> tuple[str, dict[str, Decimal]]:
    """The base currency and the rates RFM's M converts with (``CUSTOMER_RFM_BASE_CURRENCY``,
    ``CUSTOMER_RFM_RATES``): the 360 totals are the same money as the scores beside them. Read
    once per process, as every setting."""
    return RfmSettings().base_currency, dict(InsightRunSettings().rates)


@router.get("/{customer_id}/360", response_model=Customer360, responses=MERGED,
            summary="One read of a customer: profile, identities, organisation, tickets, surveys, RFM, churn risk, "
                    "orders, last contact")
async def get_customer_360(request: Request, customer_id: uuid.UUID, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal)
    base_currency, rates = money()
    async with runtime_of(request).raw_connection() as conn:
        body = await service.view(conn, customer_id=customer_id, principal=principal,
                                  base_currency=base_currency, rates=rates)
    return JSONBytesResponse(body)
