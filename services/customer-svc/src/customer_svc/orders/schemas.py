"""Orders as the API takes and shows them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator,
                      model_validator)

from helpdesk_common.pagination import DEFAULT_LIMIT, MAX_LIMIT
from helpdesk_common.text import OneLine
from helpdesk_common.validation import NOT_BLANK, WHITESPACE, AwareUtcDatetime, StrictModel
from pydantic_core import PydanticCustomError

from ..fields import NO_NUL
from .money import MINOR_UNITS, InvalidMoney, parse_amount

STATUSES = ("pending", "paid", "shipped", "completed", "cancelled", "refunded")
Status = Literal["pending", "paid", "shipped", "completed", "cancelled", "refunded"]
MAX_ITEMS = 100
#: a source system (erp, shopify, import): the namespace of external ids, as identities' external:<system>
SOURCE_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,39}$"
Source = Annotated[str, StringConstraints(pattern=SOURCE_PATTERN)]
#: one line with something visible (the document states what stripping would leave empty)
VISIBLE_LINE = f"^[^\\x00-\\x1f\\x7f]*[^\\x00-\\x1f\\x7f{WHITESPACE}][^\\x00-\\x1f\\x7f]*$"
ExternalId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200,
                                              pattern=VISIBLE_LINE)]
#: the shape is the document's; the places the currency allows are a rule across the two (cross_field)
AMOUNT_PATTERN = r"^[0-9]{1,15}(\.[0-9]{1,3})?$"
def _not_a_boolean(value: Any) -> Any:
    """JSON ``false`` is no amount (pydantic would read it as the integer 0)."""
    if isinstance(value, bool):
        raise ValueError("must be a decimal as text or an integer")
    return value


AmountText = Annotated[
    Annotated[str, StringConstraints(pattern=AMOUNT_PATTERN)] | Annotated[int, Field(ge=0, le=10**15 - 1)],
    BeforeValidator(_not_a_boolean),
    Field(description="A decimal as text (\"12.50\"), not negative, with at most the currency's minor digits "
                      "(2 for CNY, 0 for JPY, 3 for KWD); an integer is taken too.")]
Currency = Annotated[str, Field(description="ISO 4217 code, upper case (CNY, USD, JPY ...)",
                                json_schema_extra={"enum": sorted(MINOR_UNITS)})]


class OrderItemIn(StrictModel):
    sku: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100,
                                          pattern=VISIBLE_LINE)] | None = None
    name: OneLine(200) | None = None
    quantity: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    unit_price: AmountText | None = None


class OrderIn(StrictModel):
    """An order as a source system knows it; the same ``(source, external_id)`` again updates it
    (status changes, amount corrections) and never makes a second one."""

    external_id: ExternalId = Field(description="The order's id in the source system; unique per source.")
    source: Source = Field("api", description="The source system (lower case), e.g. erp, shopify; default api.")
    ordered_at: AwareUtcDatetime = Field(description="RFC 3339 with offset.")
    currency: Currency
    amount: AmountText
    status: Status = "pending"
    items: Annotated[list[OrderItemIn], Field(max_length=MAX_ITEMS)] = Field(default_factory=list)

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if value not in MINOR_UNITS:
            raise ValueError("must be an ISO 4217 currency code in upper case")
        return value

    @field_validator("amount")
    @classmethod
    def _amount(cls, value: Any, info: ValidationInfo) -> str:
        """Read against the currency (declared first, so validated first); with a bad currency
        only the currency is reported."""
        currency = info.data.get("currency")
        if currency is None:
            return str(value)
        try:
            return str(parse_amount(value, currency))
        except InvalidMoney as exc:
            raise PydanticCustomError("cross_field", str(exc)) from None

    @field_validator("items")
    @classmethod
    def _unit_prices(cls, items: list[OrderItemIn], info: ValidationInfo) -> list[OrderItemIn]:
        currency = info.data.get("currency")
        if currency is None:
            return items
        for index, item in enumerate(items):
            if item.unit_price is not None:
                try:
                    item.unit_price = str(parse_amount(item.unit_price, currency))
                except InvalidMoney as exc:
                    raise PydanticCustomError("cross_field", f"items.{index}.unit_price: {exc}") from None
        return items


class OrderForCustomerIn(OrderIn):
    """``POST /v1/orders``: the customer by ``customer_id``, or by its external id in the same
    source system (the identity ``external:<source>``), or by any identity (``{"kind", "value"}``)."""

    customer_id: uuid.UUID | None = None
    customer_external_id: ExternalId | None = None
    customer_identity: "IdentityRef | None" = None

    @model_validator(mode="after")
    def _one_customer(self) -> "OrderForCustomerIn":
        given = [n for n in ("customer_id", "customer_external_id", "customer_identity") if getattr(self, n) is not None]
        if len(given) != 1:
            raise PydanticCustomError("cross_field",
                                      "give exactly one of customer_id, customer_external_id, customer_identity")
        return self


class IdentityRef(StrictModel):
    kind: Annotated[str, StringConstraints(max_length=49, pattern=r"^[a-z_]+(:[a-z0-9][a-z0-9_.-]{0,39})?$")]
    value: Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=NOT_BLANK)]


OrderForCustomerIn.model_rebuild()


class OrderItemRead(BaseModel):
    sku: str | None
    name: str | None
    quantity: int
    unit_price: str | None


class OrderRead(BaseModel):
    id: uuid.UUID
    customer_id: uuid.UUID
    source: str
    external_id: str
    ordered_at: datetime
    amount: str
    currency: str
    status: str
    items: list[OrderItemRead]
    created_at: datetime
    updated_at: datetime
    version: int


class OrderPage(BaseModel):
    items: list[OrderRead]
    next_cursor: str | None


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT
    cursor: Annotated[str | None, Query(max_length=512, pattern=NO_NUL)] = None
