"""Feedback API shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, StrictBool, StringConstraints

from helpdesk_common.validation import StrictModel

from ..content.schemas import Locale
from .rules import MAX_COMMENT_CHARS


class VoteCreate(StrictModel):
    helpful: StrictBool
    comment: Annotated[str, StringConstraints(max_length=MAX_COMMENT_CHARS)] | None = None
    #: the translation read; without it the article's first published one
    locale: Locale | None = None


class VoteResult(BaseModel):
    article_id: uuid.UUID
    locale: str
    helpful: bool
    has_comment: bool
    #: the article's tallies after this vote (all translations)
    helpful_votes: int
    not_helpful_votes: int


class LocaleFeedback(BaseModel):
    locale: str
    views: int
    helpful: int
    not_helpful: int


class FeedbackComment(BaseModel):
    locale: str
    helpful: bool
    comment: str
    viewer_kind: str
    at: datetime


class ArticleFeedback(BaseModel):
    article_id: uuid.UUID
    views: int
    helpful: int
    not_helpful: int
    needs_review: bool
    locales: list[LocaleFeedback]
    comments: list[FeedbackComment]


class ReviewItem(BaseModel):
    article_id: uuid.UUID
    titles: dict[str, str]
    owner_id: str
    visibility: str
    review_at: datetime | None
    votes: int
    not_helpful: int
    negative_share: float | None
    views: int
    #: why: ``review_due`` (its review date has come), ``negative_feedback`` (too many "not helpful")
    reasons: list[str]


class ReviewQueue(BaseModel):
    items: list[ReviewItem]
    next_cursor: str | None = None
