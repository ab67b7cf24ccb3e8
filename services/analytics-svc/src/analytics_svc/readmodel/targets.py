"""An SLA target's current row from its ``sla.*`` events, in any arrival order (pure).

``sla_targets`` answers overdue and at-risk, so its row must not depend on which of a target's
events arrived last: each attribute is taken from the *newest* event that carries it (the state
from applied / paused / resumed / fulfilled / cancelled, the colour from applied / warning /
breached, the due time from any event that states one), ties broken by a fixed event order.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC
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
