"""Request and answer models of data subject requests."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from helpdesk_common.validation import StrictModel


class PrivacyRequestIn(StrictModel):
    customer_id: uuid.UUID
    kind: Literal["export", "erase"]


class SuspendIn(StrictModel):
    reason: str | None = Field(default=None, max_length=500,
                               description="Why erasure must wait (e.g. a legal hold); no personal data.")


class PrivacyRequestRead(BaseModel):
    id: uuid.UUID
    customer_id: uuid.UUID
    kind: Literal["export", "erase"]
    state: Literal["pending", "in_progress", "suspended", "completed"]
    requested_by: str
    #: per service: {"state": "pending" | "completed" | "failed", "at": ...}
    services: dict[str, Any]
    #: the event-log step of an erasure: "retention", "pending", "purged"
    log: str | None = None
    suspended_reason: str | None = None
    bundle_ready: bool
    bundle_expires_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = None


class PrivacyRequestDetail(PrivacyRequestRead):
    audit: list[dict[str, Any]] = Field(default_factory=list)


class PrivacyRequestPage(BaseModel):
    items: list[PrivacyRequestRead]
    next_cursor: str | None = None
