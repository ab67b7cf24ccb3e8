from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from helpdesk_common.text import OneLine
from helpdesk_common.validation import StrictModel

from ..tickets.schemas import TicketPatch, TicketRead


class MacroReply(StrictModel):
    body: Annotated[str, StringConstraints(min_length=1, max_length=65_536)]
    public: bool = True


class MacroIn(StrictModel):
    name: OneLine(128)
    #: the same fields as PATCH /v1/tickets/{id}
    actions: TicketPatch = Field(default_factory=TicketPatch)
    reply: MacroReply | None = None
    #: visible to every agent (supervisors and admins only); else personal
    shared: bool = False


class MacroRead(BaseModel):
    id: uuid.UUID
    name: str
    actions: dict[str, Any]
    reply: dict[str, Any] | None
    shared: bool
    created_by: str
    updated_at: datetime


class MacroWarning(BaseModel):
    """A knowledge-base placeholder the macro's reply could not fill (rendered empty), or filled
    without its link: ``unavailable`` (the article is not published, the agent may not see it,
    or kb-svc did not answer in time), ``no_public_url`` (an agents-only article: its title
    only, never an internal link to a customer), ``too_many_articles`` (past 10 articles)."""

    placeholder: str
    reason: str


class MacroApplied(TicketRead):
    """The ticket after the macro, and what its reply's knowledge-base placeholders lacked."""

    warnings: list[MacroWarning] = []


class MacroPreviewReply(BaseModel):
    body: str
    public: bool


class MacroPreview(BaseModel):
    """What applying the macro would post and change, without doing it."""

    reply: MacroPreviewReply | None
    actions: dict[str, Any]
    warnings: list[MacroWarning]
