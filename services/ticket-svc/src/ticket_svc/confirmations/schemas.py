from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from helpdesk_common.events import STEP_COMMENT_MAX_CHARS
from helpdesk_common.validation import StrictModel


class ConfirmationAnswer(StrictModel):
    """The customer's answer: ``confirm`` (resolved: the ticket closes) or ``reject`` (not
    resolved: it reopens), with an optional comment for the agent. Strict: unknown fields, NUL
    characters and lone surrogates are 422s, as in every other request body."""

    answer: Literal["confirm", "reject"]
    comment: str | None = Field(default=None, max_length=STEP_COMMENT_MAX_CHARS)


class ConfirmationRead(BaseModel):
    ticket_id: uuid.UUID
    number: int | None
    subject: str | None
    language: str = Field(description="The page's language: zh-CN or en.")
    step: str
    name: str
    status: str = Field(description="The step run's status: active, completed, rejected, expired, cancelled.")
    outcome: str | None = Field(description="confirmed, rejected, timed_out or cancelled once the step ended.")
    expires_at: datetime | None
    ticket_status: str
    answer: Literal["confirm", "reject"] | None = None
    replayed: bool | None = Field(default=None, description="True when this answer had been taken already.")
