"""Default SLA targets: pure functions over plain data.

Calendar minutes for now; business calendars (hours, holidays, make-up days) come with the
SLA engine. Values follow common help-desk defaults (Zendesk/Freshdesk sample policies).
"""

from __future__ import annotations

from datetime import datetime, timedelta

DEFAULT_POLICY = "default"
FIRST_RESPONSE_MINUTES: dict[str, int] = {"urgent": 60, "high": 240, "normal": 480, "low": 1440}
PRIORITY_ORDER = ("low", "normal", "high", "urgent")


def first_response_target(priority: str) -> int:
    """Minutes allowed for the first response; unknown priorities get the normal target."""
    return FIRST_RESPONSE_MINUTES.get(priority, FIRST_RESPONSE_MINUTES["normal"])


def due_at(started_at: datetime, target_minutes: int) -> datetime:
    return started_at + timedelta(minutes=target_minutes)
