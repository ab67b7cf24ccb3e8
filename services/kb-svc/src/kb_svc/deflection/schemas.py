"""Deflection API shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from helpdesk_common.validation import NOT_BLANK, StrictModel

from ..content.schemas import Locale
from .rules import MAX_SUGGESTIONS

#: where a suggestion is shown: ``web`` (the new-ticket form; the default for callers without a
#: login), ``agent`` (while answering; the default for users), a channel's own name otherwise
Channel = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]


class SuggestionCreate(StrictModel):
    subject: Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=NOT_BLANK)]
    description: Annotated[str, StringConstraints(max_length=20_000)] = ""
    #: the form's language (BCP 47): its translations are preferred, others fill in
    language: Locale | None = None
    channel: Channel | None = None
    #: the ticket an agent is answering (users only)
    ticket_id: uuid.UUID | None = None


class SuggestedArticle(BaseModel):
    id: uuid.UUID
    title: str
    snippet: str  # HTML: the text escaped, the matched words in <mark>…</mark>
    score: float
    locale: str
    visibility: str
    #: where to open it; public reads carry ``suggestion_id`` so that opening it counts as a view
    url: str


class SuggestionList(BaseModel):
    suggestion_id: uuid.UUID
    items: list[SuggestedArticle] = Field(max_length=MAX_SUGGESTIONS)


class SuggestionView(StrictModel):
    article_id: uuid.UUID


class DeflectionReport(BaseModel):
    suggestions: int
    viewed: int
    deflected: int
    tickets_followed: int
    abandoned: int
    pending: int
    #: deflected / (deflected + abandoned + tickets_followed); null while none is decided
    self_service_rate: float | None
    window_minutes: float


class LinkCreate(StrictModel):
    ticket_id: uuid.UUID


class TicketLink(BaseModel):
    ticket_id: uuid.UUID
    article_id: uuid.UUID
    linked_by: str
    linked_at: datetime


class LinkedArticle(BaseModel):
    article_id: uuid.UUID
    titles: dict[str, str]
    visibility: str
    state: str
    linked_by: str
    linked_at: datetime


class LinkedArticleList(BaseModel):
    items: list[LinkedArticle]
    next_cursor: str | None = None


class ReplySnippet(BaseModel):
    """What an agent inserts into a reply: the title, the link (for customers, the public read;
    agents-only articles have none), and ready-made text and HTML."""

    article_id: uuid.UUID
    locale: str
    title: str
    url: str | None
    text: str
    html: str
