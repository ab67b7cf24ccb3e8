"""Which policy applies to a ticket: pure functions over plain data.

The first enabled policy by (position, id) whose conditions all hold wins; when none does,
the built-in default applies (today's first-response targets by priority, calendar time).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..timers.policies import DEFAULT_POLICY, first_response_target

DEFAULT_PAUSE = ("pending", "on_hold")
DEFAULT_FRACTIONS = (0.5, 0.75, 0.9)


@dataclass(frozen=True, slots=True)
class TicketFacts:
    priority: str
    type: str | None = None
    channel: str | None = None
    tags: tuple[str, ...] = ()
    customer_tier: str | None = None
    custom_fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Target:
    minutes: int
    calendar_id: uuid.UUID | None = None  # a business target's own calendar
    #: business time; without ``calendar_id`` the ticket's team's calendar (24x7 when it has none)
    business: bool = False


def step_target(policy: "Policy", minutes: int) -> Target:
    """A workflow step's own target (``target_minutes`` of its process definition), for a
    policy that names no ``step:<key>`` target: it counts the way the policy counts the
    ticket's resolution (business time in the same calendar, or calendar time), so a step
    and the ticket it belongs to are timed on one clock; calendar time when the policy has no
    resolution target (the built-in default)."""
    resolution = policy.targets.get("resolution")
    if resolution is None or not resolution.business:
        return Target(minutes=minutes)
    return Target(minutes=minutes, calendar_id=resolution.calendar_id, business=True)


@dataclass(frozen=True, slots=True)
class Escalation:
    set_priority: str | None = None
    set_team_id: uuid.UUID | None = None
    notify: tuple[str, ...] = ()

    def as_actions(self) -> dict[str, Any] | None:
        """The ``sla.escalation_requested`` actions, or None when there is nothing to do."""
        if self.set_priority is None and self.set_team_id is None and not self.notify:
            return None
        return {"set_priority": self.set_priority,
                "set_team_id": str(self.set_team_id) if self.set_team_id else None,
                "notify": list(self.notify)}


@dataclass(frozen=True, slots=True)
class Policy:
    """A policy resolved for matching and timing (the default one has ``id`` None)."""

    id: uuid.UUID | None
    name: str
    conditions: Mapping[str, Any]
    targets: Mapping[str, Target]
    pause_statuses: tuple[str, ...] = DEFAULT_PAUSE
    warning_fractions: tuple[float, ...] = DEFAULT_FRACTIONS
    escalations: Mapping[str, Escalation] = field(default_factory=dict)


def from_definition(policy_id: uuid.UUID, name: str, definition: Mapping[str, Any]) -> Policy:
    """A stored (already validated) definition as a :class:`Policy`."""
    targets = {
        metric: Target(minutes=int(t["minutes"]), business=t.get("time") == "business",
                       calendar_id=uuid.UUID(str(t["calendar_id"]))
                       if t.get("time") == "business" and t.get("calendar_id") else None)
        for metric, t in definition["targets"].items()
    }
    escalations = {
        metric: Escalation(set_priority=e.get("set_priority"),
                           set_team_id=uuid.UUID(str(e["set_team_id"])) if e.get("set_team_id") else None,
                           notify=tuple(e.get("notify") or ()))
        for metric, e in (definition.get("escalations") or {}).items()
    }
    return Policy(
        id=policy_id, name=name, conditions=definition.get("conditions") or {}, targets=targets,
        pause_statuses=tuple(definition.get("pause_statuses", DEFAULT_PAUSE)),
        warning_fractions=tuple(definition.get("warning_fractions", DEFAULT_FRACTIONS)),
        escalations=escalations,
    )


def default_policy(priority: str) -> Policy:
    """The built-in policy: first response only, by priority, in calendar time."""
    return Policy(id=None, name=DEFAULT_POLICY, conditions={},
                  targets={"first_response": Target(minutes=first_response_target(priority))})


def _one_of(accepted: Sequence[Any] | None, value: Any) -> bool:
    return not accepted or value in accepted


def matches(conditions: Mapping[str, Any], ticket: TicketFacts) -> bool:
    """Whether every condition holds for the ticket (missing or empty conditions hold)."""
    if not _one_of(conditions.get("priority"), ticket.priority):
        return False
    if not _one_of(conditions.get("customer_tier"), ticket.customer_tier):
        return False
    if not _one_of(conditions.get("channel"), ticket.channel):
        return False
    if not _one_of(conditions.get("type"), ticket.type):
        return False
    tags = conditions.get("tags")
    if tags and not set(tags) & set(ticket.tags):
        return False
    for name, accepted in (conditions.get("custom_fields") or {}).items():
        if not accepted:
            continue
        value = ticket.custom_fields.get(name)
        values = value if isinstance(value, list) else [value]
        if not any(v in accepted for v in values):
            return False
    return True


def select(policies: Iterable[Policy], ticket: TicketFacts) -> Policy:
    """The first matching policy, in the order given (position order), else the default."""
    for policy in policies:
        if matches(policy.conditions, ticket):
            return policy
    return default_policy(ticket.priority)
