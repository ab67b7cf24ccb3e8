"""A timer's fire points and colour: pure functions over plain values.

The scheduler never computes calendars on the hot path: whenever a timer starts, resumes or
is re-targeted we precompute every future fire point here (a warning at each fraction of
the target, then the due time), and the database only compares timestamps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from .clock import Clock

METRICS = ("first_response", "next_response", "periodic_update", "resolution")
#: a workflow step's metric is ``step:<key>`` (``step:approval``, ``step:customer_confirmation``)
STEP_PREFIX = "step:"
_STEP_KEY = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")  # fullmatch: "$" would let a final newline in
#: the same rule as an ECMA-262 pattern, for the API document
METRIC_PATTERN = "^(" + "|".join(METRICS) + r"|step:[a-z0-9][a-z0-9_.-]{0,63})$"


def step_metric(step: str) -> str:
    return STEP_PREFIX + step


def is_metric(name: str) -> bool:
    """One of the four ticket metrics, or ``step:<key>`` with a lower-case key of 1–64 characters."""
    if name in METRICS:
        return True
    return name.startswith(STEP_PREFIX) and bool(_STEP_KEY.fullmatch(name[len(STEP_PREFIX):]))
def started_by(metric: str, started_at: datetime, at: datetime) -> bool:
    """Whether a step timer started at or after ``at``, i.e. by the status change at ``at``
    (a customer-confirmation step begins with the solve, in either order of the events)."""
    return metric.startswith(STEP_PREFIX) and started_at >= at


LIVE = ("running", "paused")


@dataclass(frozen=True, slots=True)
class Plan:
    fire_at: list[datetime]  # sorted; the last one is the due time
    fractions: list[float]  # same length; the last one is 1.0
    due_at: datetime


def plan(clock: Clock, *, anchor: datetime, target_s: float, consumed_s: float, warning_fractions: list[float]) -> Plan:
    """Fire points of a target of ``target_s`` seconds of which ``consumed_s`` are used up,
    counting on from ``anchor``. Points already behind (fraction reached before ``anchor``)
    are placed at ``anchor``: whether they still fire depends on ``fired_count``, not on time.
    """
    fractions = sorted(f for f in warning_fractions if 0 < f < 1) + [1.0]
    points = [clock.add(anchor, f * target_s - consumed_s) if f * target_s > consumed_s else clock.add(anchor, 0)
              for f in fractions]
    # business arithmetic is monotonic, but keep the invariant explicit for the SQL side
    for i in range(1, len(points)):
        if points[i] < points[i - 1]:
            points[i] = points[i - 1]
    return Plan(fire_at=points, fractions=fractions, due_at=points[-1])


def next_fire(fire_at: list[datetime], fired_count: int) -> datetime | None:
    """The next point still to fire (None when the due time has fired)."""
    return fire_at[fired_count] if fired_count < len(fire_at) else None


def clamp_fired(fired_count: int, fire_points: int) -> int:
    """After a re-target with fewer warnings: warnings already sent are not sent again, but
    the breach (the last point) always stays ahead of a timer that has not breached."""
    return min(fired_count, fire_points - 1)


def colour(*, status: str, fired_count: int, warnings: int) -> str | None:
    """green until the first warning, yellow after it, red after the last one, breached at
    the due time; fulfilled and cancelled timers have no colour."""
    if status == "breached":
        return "breached"
    if status not in LIVE:
        return None
    if warnings == 0 or fired_count == 0:
        return "green"
    return "red" if fired_count >= warnings else "yellow"


def remaining_seconds(clock: Clock, *, status: str, target_s: float, consumed_s: float,
                      running_since: datetime | None, now: datetime) -> float:
    """Target seconds left (business seconds for business targets); negative once overdue."""
    used = consumed_s
    if status in ("running", "breached") and running_since is not None:
        used += clock.between(running_since, now)
    return target_s - used


def outcome(*, status: str, due_at: datetime | None, fulfilled_at: datetime | None) -> str | None:
    """How the target went: ``achieved`` (met by its due time), ``breached`` (the due time
    passed first, met late or not yet), or None while it is still open in time or was
    cancelled (a closed ticket, a skipped step: no verdict, as in compliance)."""
    if fulfilled_at is not None:
        return "achieved" if due_at is None or fulfilled_at <= due_at else "breached"
    return "breached" if status == "breached" else None


def elapsed(clock: Clock, *, started_at: datetime, ended_at: datetime) -> float:
    """Seconds from start to end on ``clock`` (business seconds on a business clock), pauses included."""
    return max(0.0, clock.between(started_at, ended_at))


def counted_seconds(clock: Clock, *, consumed_s: float, running_since: datetime | None, paused_at: datetime | None,
                    ended_at: datetime) -> float:
    """Seconds counted against the target up to ``ended_at`` (met, cancelled, or now): what was
    consumed before the last pause or resume, plus the running spell unless it is paused.
    Meeting or cancelling a timer does not fold the last spell into ``consumed_s``, so this
    is the one place that adds it."""
    if paused_at is not None or running_since is None:
        return consumed_s
    return consumed_s + max(0.0, clock.between(running_since, ended_at))

