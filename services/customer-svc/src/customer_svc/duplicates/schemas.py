"""Pydantic shapes of duplicate suggestions."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import Query
from pydantic import BaseModel, Field

from helpdesk_common.validation import StrictModel

from ..customers.schemas import CustomerRead
from ..fields import NO_NUL
from .rules import REASONS

Reason = Literal[tuple(REASONS)]  # type: ignore[valid-type]
MAX_PAGE = 50


class ReasonRead(BaseModel):
    reason: Reason = Field(description="same_wechat_unionid (0.95), same_phone (0.9), same_email_local_part_and_name "
                                       "(0.75), same_name_and_organization (0.6)")
    confidence: float
    #: the shared identity value (masked as identities are for the caller), or None for a name
    shared: str | None = None


class CandidateRead(BaseModel):
    customer: CustomerRead
    confidence: float = Field(description="1 − Π(1 − c) over the reasons")
    reasons: list[ReasonRead]


class CandidatePage(BaseModel):
    items: list[CandidateRead]
    next_cursor: str | None


class PairRead(BaseModel):
    first: CustomerRead
    second: CustomerRead
    confidence: float
    reasons: list[ReasonRead]


class PairPage(BaseModel):
    items: list[PairRead]
    next_cursor: str | None


class PairQuery(BaseModel):
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 25
    cursor: Annotated[str | None, Query(max_length=1024, pattern=NO_NUL)] = None


class DismissIn(StrictModel):
    """Two customers a supervisor says are two people: they are no longer suggested."""

    first_id: uuid.UUID
    second_id: uuid.UUID
