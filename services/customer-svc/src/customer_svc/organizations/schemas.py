"""Organisations as the API takes and shows them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from helpdesk_common.pagination import DEFAULT_LIMIT, MAX_LIMIT
from helpdesk_common.text import OneLine

from ..fields import NO_NUL, Attributes, Notes, Tier
from helpdesk_common.validation import StrictModel

from .domains import DOMAIN_PATTERN, MAX_DOMAINS

Name = OneLine(200)
Domain = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254, pattern=DOMAIN_PATTERN)]
Domains = Annotated[list[Domain], Field(max_length=MAX_DOMAINS, description=(
    "E-mail domains whose customers join the organisation when created or when the address is added; "
    "public webmail domains (qq.com, 163.com, gmail.com, ...) are refused, and a domain belongs to one "
    "organisation."))]


class OrganizationCreate(StrictModel):
    name: Name = Field(description="Unique, compared case-insensitively.")
    domains: Domains = Field(default_factory=list)
    tier: Tier | None = None
    attributes: Attributes = Field(default_factory=dict)
    notes: Notes | None = None


class OrganizationUpdate(StrictModel):
    """``PATCH``: only the fields sent change; ``null`` clears tier and notes; ``domains``
    replaces the list; ``attributes`` changes the keys it names."""

    name: Name = None
    domains: Domains = None
    tier: Tier | None = None
    attributes: Attributes = None
    notes: Notes | None = None


class OrganizationRead(BaseModel):
    id: uuid.UUID
    name: str
    domains: list[str]
    tier: str | None
    attributes: dict[str, Any]
    notes: str | None
    created_at: datetime
    updated_at: datetime
    version: int


class OrganizationPage(BaseModel):
    items: list[OrganizationRead]
    next_cursor: str | None


class OrganizationListQuery(BaseModel):
    """Query string of ``GET /v1/organizations``; filters combine with AND."""

    model_config = ConfigDict(extra="forbid")

    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT
    cursor: Annotated[str | None, Query(max_length=512, pattern=NO_NUL)] = None
    name: Annotated[str | None, Query(min_length=1, max_length=200, pattern=NO_NUL,
                                      description="names starting with this, case-insensitive")] = None
    domain: Annotated[str | None, Query(min_length=1, max_length=254, pattern=NO_NUL,
                                        description="the organisation owning this e-mail domain")] = None
    tier: Annotated[str | None, Query(min_length=1, max_length=50, pattern=NO_NUL,
                                      description="exact, compared like the stored tier (case-folded)")] = None
