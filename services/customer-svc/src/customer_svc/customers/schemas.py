"""Pydantic shapes of the customer API (documentation and validation; reads render rows with orjson)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from helpdesk_common.identities import KIND_PATTERN
from helpdesk_common.pagination import DEFAULT_LIMIT, MAX_LIMIT
from helpdesk_common.text import OneLine
from helpdesk_common.validation import NOT_BLANK, NOT_BLANK_CHAR, StrictModel

from ..fields import NO_NUL, Attributes, Notes, Tier
from .profile import LANGUAGE_PATTERN, MAX_TAGS, TAG_MAX_LENGTH, canonical_language, check_time_zone, zone_names

#: the display name of the To: of every mail to the customer: one line (helpdesk_common.text)
Name = OneLine(200)
Language = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=35,
                                            pattern=LANGUAGE_PATTERN)]
TimeZone = Annotated[str, Field(json_schema_extra=lambda schema: schema.update(enum=zone_names()))]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=TAG_MAX_LENGTH,
                                       pattern=f"^[^\\x00-\\x1f\\x7f]*{NOT_BLANK_CHAR}[^\\x00-\\x1f\\x7f]*$")]
Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS)]
MAX_IDENTITIES = 20


class IdentityIn(StrictModel):
    """An identity as an agent types it: checked against its kind (an e-mail address, a phone
    number, a platform id) and stored normalised (e-mail lower-cased, phone E.164)."""

    kind: Annotated[str, StringConstraints(max_length=49, pattern=KIND_PATTERN)] = Field(
        description="email, phone, wechat_openid, wechat_unionid, wecom_external_userid, dingtalk_userid, "
                    "or external:<system> (system: lower-case letters, digits, '_', '.', '-')")
    value: Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=NOT_BLANK)]


class IdentityRead(BaseModel):
    id: uuid.UUID
    kind: str
    value: str


class _Profile(StrictModel):
    @field_validator("language", check_fields=False)
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        return canonical_language(value) if value is not None else None

    @field_validator("time_zone", check_fields=False)
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return check_time_zone(value) if value is not None else None


class CustomerCreate(_Profile):
    """``POST /v1/customers`` (supervisors, admins): a customer with at least one identity.
    Without ``organization_id`` the first e-mail's domain decides the organisation."""

    name: Name | None = None
    identities: Annotated[list[IdentityIn], Field(min_length=1, max_length=MAX_IDENTITIES)]
    tier: Tier | None = None
    organization_id: uuid.UUID | None = None
    account_owner_id: uuid.UUID | None = Field(None, description="The agent (a user id) who looks after them.")
    language: Language | None = Field(None, description="BCP 47, e.g. zh-CN, en (stored in canonical case).")
    time_zone: TimeZone | None = Field(None, description="An IANA time zone, e.g. Asia/Shanghai.")
    tags: Tags = Field(default_factory=list)
    notes: Notes | None = None
    attributes: Attributes = Field(default_factory=dict)


class CustomerUpdate(_Profile):
    """``PATCH /v1/customers/{id}``: only the fields sent change; ``null`` clears them.

    Agents change ``name`` and ``notes``; everything else (the tier drives routing and SLA
    targets, the organisation and owner decide who looks after the customer) is for supervisors
    and admins. ``tags`` replaces the list, ``add_tags`` and ``remove_tags`` edit it;
    ``attributes`` changes the keys it names."""

    name: Name | None = None
    tier: Tier | None = None
    organization_id: uuid.UUID | None = None
    account_owner_id: uuid.UUID | None = None
    language: Language | None = None
    time_zone: TimeZone | None = None
    tags: Tags = None
    add_tags: Tags = None
    remove_tags: Tags = None
    notes: Notes | None = None
    attributes: Attributes = None


class CustomerRead(BaseModel):
    id: uuid.UUID
    name: str | None
    tier: str | None
    organization_id: uuid.UUID | None
    account_owner_id: uuid.UUID | None
    language: str | None
    time_zone: str | None
    tags: list[str]
    notes: str | None
    attributes: dict[str, Any]
    identities: list[IdentityRead]
    created_at: datetime
    updated_at: datetime
    version: int


class CustomerPage(BaseModel):
    items: list[CustomerRead]
    next_cursor: str | None


class CustomerListQuery(BaseModel):
    """Query string of ``GET /v1/customers``; filters combine with AND. Attribute filters are
    ``attr.<key>=<value>`` (a multiselect matches when it holds the value). Other names are
    refused by the route itself (``endpoints.attribute_pairs``), hence ``extra="ignore"`` here."""

    model_config = ConfigDict(extra="ignore")

    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT
    cursor: Annotated[str | None, Query(max_length=512, pattern=NO_NUL)] = None
    q: Annotated[str | None, Query(min_length=1, max_length=200, pattern=NO_NUL, description=(
        "names containing every word or Chinese character pair of q (the last word as a prefix), or any "
        "identity equal to q once normalised (e-mail, phone, platform and external ids)"))] = None
    email: Annotated[str | None, Query(max_length=254, pattern=NO_NUL, description="exact, case-insensitive")] = None
    phone: Annotated[str | None, Query(max_length=32, pattern=NO_NUL, description="exact once normalised (E.164)")] = None
    tier: Annotated[str | None, Query(min_length=1, max_length=50, pattern=NO_NUL,
                                      description="exact, compared like the stored tier (case-folded)")] = None
    organization_id: uuid.UUID | None = None
    account_owner_id: uuid.UUID | None = None
    segment: Annotated[str | None, Query(
        pattern="^(important|general)_(value|development|retention|win_back)$",
        description="customers in this RFM segment (docs/customers.md, \"Segments\")")] = None
    risk_band: Annotated[Literal["low", "medium", "high"] | None, Query(
        description="customers whose stored churn-risk score is in this band")] = None
    tag: Annotated[list[Annotated[str, StringConstraints(min_length=1, max_length=TAG_MAX_LENGTH,
                                                         pattern=NO_NUL)]] | None,
                   Query(max_length=10, description="customers with every one of these tags")] = None
