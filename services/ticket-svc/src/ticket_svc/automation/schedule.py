"""Time-based automations: when each one becomes due on a ticket, and which episode that is.

Zendesk runs automations once an hour over every ticket. Here a scheduler keeps one timer per
(automation, ticket, episode) and fires it at the second, like sla-svc's timers; this module is
the pure part it needs:

* ``due_at`` - the instant the automation's conditions become true for the ticket as it is now,
  or None if they never will without another change. The non-time conditions are judged on the
  ticket now; each time condition ``hours_since.<anchor> gte h`` becomes true at anchor + h
  (calendar hours, or business hours through the caller's ``business_time_fn``), and the
  automation at the latest of those instants. Any change to the ticket can move it, so the
  scheduler recomputes it on every update (and drops the timer when it becomes None).
* ``episode_key`` - the instants the time conditions count from (e.g. the ``status_changed_at``
  that started a "pending" spell). A timer fires once per key: a ticket that goes pending,
  open and pending again starts a new episode and can be reminded again; a ticket that stays
  pending is reminded once, even if the reminder's own action changes nothing the conditions
  look at. A change to any other fact (priority, tags...) is not a new episode: to act once
  per such change, count from ``hours_since.updated``.

Business time: sla-svc owns the calendars and their arithmetic
(``sla_svc/calendars/business_time.add_business_time``). ticket-svc does not import sla-svc, so
the caller passes ``business_time_fn(start, amount) -> instant``, e.g. that function bound to
the team's calendar; an automation counting business hours with no function is an error rather
than a silent switch to calendar hours.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import Field

from helpdesk_common.text import OneLine
from helpdesk_common.validation import StrictModel

from .actions import Action, ActionIn
from .conditions import AutomationConditionsIn, Condition, Conditions, TicketState, anchor_instant, time_anchor

#: ``business_time_fn(start, amount)``: the instant ``amount`` of business time after ``start``
BusinessTimeFn = Callable[[datetime, timedelta], datetime]


class BusinessCalendarRequired(ValueError):
    """An automation counts business hours and no business-time function was given."""


@dataclass(frozen=True, slots=True)
class Automation:
    name: str
    conditions: Conditions
    actions: tuple[Action, ...] = ()
    position: int = 0
    active: bool = True
    id: Any = None

    @property
    def time_conditions(self) -> tuple[Condition, ...]:
        return tuple(c for c in self.conditions.all if c.is_time)


class AutomationIn(StrictModel):
    """``{"name", "active", "position", "conditions": {"all", "any"}, "actions": [...]}``; ``all``
    holds at least one ``hours_since.*`` condition."""

    name: OneLine(128)
    active: bool = True
    position: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    conditions: AutomationConditionsIn
    actions: Annotated[list[ActionIn], Field(min_length=1, max_length=20)]

    def to_automation(self, *, automation_id: Any = None) -> Automation:
        return Automation(name=self.name, conditions=self.conditions.to_conditions(), actions=tuple(self.actions),
                          position=self.position, active=self.active, id=automation_id)


def ordered_automations(automations: Iterable[Automation]) -> list[Automation]:
    """Active automations in a total order (position, id, name): which of two due at the same
    instant acts first never depends on the order they were loaded in."""
    return sorted((a for a in automations if a.active), key=lambda a: (a.position, str(a.id), a.name))


def condition_due(cond: Condition, ticket: TicketState, business_time_fn: BusinessTimeFn | None) -> datetime | None:
    """The instant one time condition becomes true, or None when the ticket lacks its anchor
    (or the instant lies beyond the calendar's range)."""
    anchor = anchor_instant(ticket, time_anchor(cond.field) or "")
    if anchor is None:
        return None
    amount = timedelta(hours=cond.value)
    if cond.calendar == "business":
        if business_time_fn is None:
            raise BusinessCalendarRequired(f"{cond.field} counts business hours: a business-time function is needed")
        return business_time_fn(anchor, amount)
    try:
        return anchor + amount
    except OverflowError:
        return None


def due_at(automation: Automation, ticket: TicketState,
           business_time_fn: BusinessTimeFn | None = None) -> datetime | None:
    """When ``automation`` becomes due on ``ticket`` as it is now; None: not while it stays so."""
    if not automation.active or not automation.conditions.matches(ticket, ticket, frozenset(), None):
        return None
    instants = []
    for cond in automation.time_conditions:
        instant = condition_due(cond, ticket, business_time_fn)
        if instant is None:
            return None
        instants.append(instant)
    return max(instants) if instants else None


def episode_key(automation: Automation, ticket: TicketState) -> str | None:
    """The episode a firing belongs to: the anchors of the time conditions, as UTC instants.

    None when an anchor is missing (then ``due_at`` is None too). Equal instants give equal
    keys whatever offset they were written with; the key is at most a few hundred characters."""
    parts = []
    for anchor in sorted({time_anchor(c.field) or "" for c in automation.time_conditions}):
        instant = anchor_instant(ticket, anchor)
        if instant is None:
            return None
        parts.append(f"{anchor}={instant.isoformat()}")
    return ";".join(parts) or None
