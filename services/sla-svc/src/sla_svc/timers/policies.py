"""The built-in default policy's targets: pure functions over plain data.

It applies when no configured policy matches (``policies/matching.py``): first response by
priority, in calendar time. Values follow common help-desk defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

DEFAULT_POLICY = "default"
CALENDAR = "24x7"
FIRST_RESPONSE = "first_response"
FIRST_RESPONSE_MINUTES: dict[str, int] = {"urgent": 60, "high": 240, "normal": 480, "low": 1440}
PRIORITY_ORDER = ("low", "normal", "high", "urgent")  # ascending urgency
FALLBACK_PRIORITY = "normal"


@dataclass(frozen=True, slots=True)
class Timer:
    metric: str
    policy: str
    target_minutes: int
    started_at: datetime
    due_at: datetime


def first_response_target(priority: str) -> int:
    """Minutes allowed for the first response; an unknown priority gets the normal target."""
    return FIRST_RESPONSE_MINUTES.get(priority, FIRST_RESPONSE_MINUTES[FALLBACK_PRIORITY])


def due_at(started_at: datetime, target_minutes: int) -> datetime:
    if started_at.tzinfo is None:
        raise ValueError("started_at must carry a time zone")
    return started_at + timedelta(minutes=target_minutes)


def first_response_timer(*, priority: str, created_at: datetime) -> Timer:
    """The first-response timer of a ticket created at ``created_at`` with ``priority``."""
    target = first_response_target(priority)
    return Timer(
        metric=FIRST_RESPONSE,
        policy=DEFAULT_POLICY,
        target_minutes=target,
        started_at=created_at,
        due_at=due_at(created_at, target),
    )


def default_policy_table() -> dict:
    return {
        "name": DEFAULT_POLICY,
        "calendar": CALENDAR,
        "first_response_minutes": dict(FIRST_RESPONSE_MINUTES),
    }
