"""An SLA target's current row from its ``sla.*`` events, in any arrival order (pure).

``sla_targets`` answers overdue and at-risk, so its row must not depend on which of a target's
events arrived last: each attribute is taken from the *newest* event that carries it (the state
from applied / paused / resumed / fulfilled / cancelled, the colour from applied / warning /
breached, the due time from any event that states one), ties broken by a fixed event order.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from .facts import SlaState

#: same-instant tiebreak: the life of a target cycle
_RANK = {"applied": 0, "warning": 1, "breached": 2, "paused": 3, "resumed": 4, "fulfilled": 5, "cancelled": 6}
FIELDS = ("state", "colour", "policy", "target_minutes", "started_at", "due_at")


def target_row(states: Iterable[SlaState]) -> dict[str, Any] | None:
    """The ``sla_targets`` values of one (ticket, metric); None without events. A target first
    seen through a later event is ``running`` and ``green`` until an event says otherwise."""
    ordered = sorted(states, key=_order)
    if not ordered:
        return None
    row: dict[str, Any] = {"state": "running", "colour": "green", "policy": None, "target_minutes": None,
                           "started_at": None, "due_at": None}
    for s in ordered:
        for name in FIELDS:
            value = getattr(s, name)
            if value is not None:
                row[name] = value
    row["event_at"] = ordered[-1].at
    return row


def _order(s: SlaState) -> tuple[Any, ...]:
    """Time, then the event order, then every field: a total order, whatever the arrival order."""
    rest = tuple("" if getattr(s, name) is None else str(getattr(s, name)) for name in ("event", *FIELDS))
    return (s.at.astimezone(UTC), _RANK.get(s.event, 99), rest)


def sla_clock(states: Iterable[SlaState]) -> tuple[datetime | None, datetime | None]:
    """When an open ticket becomes overdue and when it becomes at risk, from all its ``sla.*``
    states (pure, order-tolerant): ``(overdue_at, at_risk_at)``, both None without a running
    target that has a due time.

    A running target is overdue from its due time (from its breach, if that came first) and at
    risk from the start of its last quarter (``due_at`` - ``target_minutes`` / 4), or from its
    warning when it is yellow or red; docs/metrics.md "overdue and at-risk". The ticket is overdue
    once any running target is (the earliest), and at risk once any is, until it is overdue: so
    at an instant ``now`` it counts as overdue when ``overdue_at <= now`` and as at risk when
    ``at_risk_at <= now < overdue_at`` — each open ticket at most once, which is what the board's
    counts maintained per hour (``open_rollups``) need.
    """
    by_metric: dict[str, list[SlaState]] = {}
    for s in states:
        by_metric.setdefault(s.metric, []).append(s)
    overdue: list[datetime] = []
    risk: list[datetime] = []
    for metric_states in by_metric.values():
        row = target_row(metric_states)
        if row is None or row["state"] != "running":
            continue
        due = row["due_at"]
        if row["colour"] == "breached":
            breached = max(s.at for s in metric_states if s.event == "breached")
            overdue.append(breached if due is None else min(due, breached))
            continue
        if due is None:
            continue
        overdue.append(due)
        starts = [due - timedelta(seconds=(row["target_minutes"] or 0) * 15)]
        if row["colour"] in ("yellow", "red"):
            starts.append(max(s.at for s in metric_states if s.event == "warning"))
        risk.append(min(starts))
    if not overdue:
        return None, None
    overdue_at = min(overdue)
    return overdue_at, min([overdue_at, *risk])
