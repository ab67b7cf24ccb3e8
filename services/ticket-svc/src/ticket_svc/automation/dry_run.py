"""Dry run: which triggers would fire on an update of a ticket, and when each automation would.

It runs the very code the write path and the scheduler run (``run_triggers``, ``due_at``,
``episode_key``), so what it says is what would happen, and adds the reasons: each condition
with whether it held, each time condition with the instant it counts from and the instant it
becomes true. Nothing is written or sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from .actions import SideEffect
from .conditions import TicketState, UpdateContext, anchor_instant, changed_fields, time_anchor
from .schedule import Automation, BusinessTimeFn, condition_due, due_at, episode_key, ordered_automations
from .triggers import Trigger, ordered_triggers, run_triggers

Reason = tuple[str, bool]


@dataclass(frozen=True, slots=True)
class TriggerVerdict:
    id: Any
    name: str
    position: int
    fires: bool
    pass_number: int | None
    reasons: tuple[Reason, ...]
    changes: dict[str, Any]
    effects: tuple[SideEffect, ...]


@dataclass(frozen=True, slots=True)
class AutomationVerdict:
    id: Any
    name: str
    #: due now (at or before ``now``), scheduled for later, never (as the ticket is), or unknown
    #: (the business-time function failed or is missing: ``reasons`` says which)
    state: Literal["due", "scheduled", "never", "unknown"]
    due_at: datetime | None
    episode_key: str | None
    reasons: tuple[Reason, ...]


@dataclass(frozen=True, slots=True)
class DryRun:
    triggers: tuple[TriggerVerdict, ...]
    #: the ticket as the update and its triggers would leave it; automations are judged on it
    ticket: TicketState
    passes: int
    bounded: bool
    automations: tuple[AutomationVerdict, ...]


def dry_run(
    rules: Iterable[Trigger],
    automations: Iterable[Automation],
    ticket: TicketState,
    now: datetime,
    business_time_fn: BusinessTimeFn | None = None,
    *,
    before: TicketState | None = None,
    changes: Iterable[str] = (),
    context: UpdateContext | None = None,
) -> DryRun:
    """Triggers on the update ``before`` → ``ticket`` (by default an agent's update that changed
    nothing, which shows the rules whose conditions the ticket meets as it is), then every
    automation on the ticket the triggers leave."""
    rules = list(rules)
    context = context or UpdateContext()
    start = ticket if before is None else before
    declared = frozenset(changes)
    run = run_triggers(rules, start, ticket, declared, context)
    fired = {record.rule.key: record for record in run.records}
    verdicts = []
    for rule in ordered_triggers(rules):
        record = fired.get(rule.key)
        seen = record.seen if record else run.ticket
        changed = changed_fields(start, seen, declared)
        verdicts.append(TriggerVerdict(
            id=rule.id, name=rule.name, position=rule.position, fires=record is not None,
            pass_number=record.pass_number if record else None,
            reasons=tuple(rule.conditions.explain(start, seen, changed, context)),
            changes=dict(record.result.changes) if record else {},
            effects=record.result.effects if record else (),
        ))
    judged = tuple(_automation_verdict(a, run.ticket, now, business_time_fn) for a in ordered_automations(automations))
    return DryRun(tuple(verdicts), run.ticket, run.passes, run.bounded, judged)


def _automation_verdict(automation: Automation, ticket: TicketState, now: datetime,
                        business_time_fn: BusinessTimeFn | None) -> AutomationVerdict:
    reasons: list[Reason] = list(automation.conditions.explain(ticket, ticket, frozenset(), None))
    try:
        for cond in automation.time_conditions:
            anchor = anchor_instant(ticket, time_anchor(cond.field) or "")
            instant = condition_due(cond, ticket, business_time_fn)
            if anchor is None:
                reasons.append((f"all: {cond.describe()}: the ticket has no {cond.field[len('hours_since.'):]} "
                                f"instant", False))
            elif instant is None:
                reasons.append((f"all: {cond.describe()}: out of the calendar's range", False))
            else:
                reasons.append((f"all: {cond.describe()}: from {anchor.isoformat()}, true from "
                                f"{instant.isoformat()}", instant <= now))
        due = due_at(automation, ticket, business_time_fn)
    except ValueError as exc:  # BusinessCalendarRequired, sla-svc's NoWorkingTime
        reasons.append((f"business time: {exc}", False))
        return AutomationVerdict(automation.id, automation.name, "unknown", None,
                                 episode_key(automation, ticket), tuple(reasons))
    state: Literal["due", "scheduled", "never"] = "never" if due is None else "due" if due <= now else "scheduled"
    return AutomationVerdict(automation.id, automation.name, state, due, episode_key(automation, ticket),
                             tuple(reasons))
