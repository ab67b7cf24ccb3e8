from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel


class VisitorAttachment(BaseModel):
    filename: str
    content_type: str
    size: int


class VisitorMessage(BaseModel):
    """A message as the visitor sees it: no delivery state, no ticket, no author id."""

    id: uuid.UUID
    author_kind: Literal["customer", "agent"]
    #: the agent's display name (null for the visitor's own messages)
    author_name: str | None
    body_text: str
    body_html: str | None
    attachments: list[VisitorAttachment]
    created_at: datetime


class VisitorMessagePage(BaseModel):
    items: list[VisitorMessage]
    #: pass as ``after`` next time: the position after the last message answered (the same
    #: ``after`` when nothing was new; null only when the conversation has no message yet)
    cursor: str | None


class VisitorTokenRead(BaseModel):
    conversation_id: str
    visitor_token: str
    expires_at: datetime
