"""Triggers: ordered event-condition-action rules run on every ticket creation and update.

Evaluation, as Zendesk users know it but with a bound that holds for any rule set:

* active rules run in a total order: ``position``, then ``id`` (then ``name``), so the result
  never depends on the order the caller listed them in;
* a *pass* walks the rules in that order; a rule whose conditions hold fires, its actions are
  applied at once, and the rules after it in the same pass see the changed ticket;
* **a rule fires at most once per originating update**, whatever its actions do;
* a pass that changed the ticket is followed by another pass (so a rule placed before the one
  that set ``status`` can still react to ``status changed_to solved``), at most ``max_passes``
  passes in all (``MAX_PASSES`` = 5). A pass that changed nothing ends the run: nothing a
  condition can see moved, so a further pass could fire nothing new;
* change operators compare the ticket before the originating update with the ticket now, so a
  trigger's own change counts as part of the update for the rules that run after it.

Both bounds hold together, so a run fires at most ``min(len(rules), ...)`` rules in at most
``max_passes`` passes, and a trigger can never re-fire itself, however its actions loop.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any, NamedTuple

from pydantic import Field

from helpdesk_common.text import OneLine
from helpdesk_common.validation import StrictModel

from .actions import Action, ActionIn, ActionResult, SideEffect, apply_actions
from .conditions import NOTHING, Conditions, ConditionsIn, TicketState, UpdateContext, changed_fields, with_changes

MAX_PASSES = 5


@dataclass(frozen=True, slots=True)
class Trigger:
    """A validated trigger; ``id`` is the stored rule's id (None for an unsaved one)."""

    name: str
    position: int = 0
    conditions: Conditions = Conditions()
    actions: tuple[Action, ...] = ()
    active: bool = True
    id: Any = None

    @property
    def key(self) -> str:
        """What "the same rule" means for the once-per-update bound."""
        return f"id:{self.id}" if self.id is not None else f"name:{self.name}"


class TriggerIn(StrictModel):
    """``{"name", "active", "position", "conditions": {"all", "any"}, "actions": [...]}``."""

    name: OneLine(128)
    active: bool = True
    position: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    conditions: ConditionsIn = Field(default_factory=ConditionsIn)
    actions: Annotated[list[ActionIn], Field(min_length=1, max_length=20)]

    def to_trigger(self, *, trigger_id: Any = None) -> Trigger:
        return Trigger(name=self.name, position=self.position, conditions=self.conditions.to_conditions(),
                       actions=tuple(self.actions), active=self.active, id=trigger_id)


def ordered_triggers(rules: Iterable[Trigger]) -> list[Trigger]:
    """Active rules in evaluation order: a total order, whatever order they came in."""
    return sorted((r for r in rules if r.active), key=lambda r: (r.position, str(r.id), r.name))


class Firing(NamedTuple):
    """One rule that fired and the actions it contributed (unpacks as ``rule, actions``)."""

    rule: Trigger
    actions: tuple[Action, ...]


@dataclass(frozen=True, slots=True)
class FiringRecord:
    """A firing with what it did: the pass it fired in, its field changes and side effects."""

    rule: Trigger
    pass_number: int
    result: ActionResult
    #: the ticket as this rule saw it when it fired (its conditions held of it)
    seen: TicketState


@dataclass(frozen=True, slots=True)
class TriggerRun:
    """Everything a run decided: the audit trail of firings and the ticket they leave."""

    records: tuple[FiringRecord, ...]
    #: the ticket as the update left it, before any trigger
    start: TicketState
    #: the ticket as the triggers left it
    ticket: TicketState
    passes: int
    #: the last allowed pass still changed the ticket, so rules that would have reacted to
    #: that change in a further pass did not get the chance (audit it: the rule set loops)
    bounded: bool

    @property
    def firings(self) -> list[Firing]:
        return [Firing(r.rule, r.rule.actions) for r in self.records]

    @property
    def changes(self) -> dict[str, Any]:
        """The fields whose final value differs from what the update left, with that value
        (a trigger undoing another's change leaves nothing to write)."""
        merged: dict[str, Any] = {}
        for record in self.records:
            merged.update(record.result.changes)
        return {name: value for name, value in merged.items() if value != getattr(self.start, name)}

    @property
    def effects(self) -> tuple[SideEffect, ...]:
        return tuple(effect for record in self.records for effect in record.result.effects)


def run_triggers(
    rules: Iterable[Trigger],
    ticket_before: TicketState | None,
    ticket_after: TicketState,
    changes: Iterable[str] = (),
    context: UpdateContext | None = None,
    *,
    max_passes: int = MAX_PASSES,
) -> TriggerRun:
    """Run ``rules`` on the update from ``ticket_before`` (None: a creation) to ``ticket_after``.

    ``changes`` names fields the update changed that the two states cannot show; the context
    defaults to an agent's update (a creation when ``ticket_before`` is None)."""
    if max_passes < 1:
        raise ValueError("max_passes must be at least 1")
    before = NOTHING if ticket_before is None else ticket_before
    if context is None:
        context = UpdateContext(event="created" if ticket_before is None else "updated")
    declared = frozenset(changes)
    ordered = ordered_triggers(rules)
    fired: set[str] = set()
    records: list[FiringRecord] = []
    current = ticket_after
    changed = changed_fields(before, current, declared)  # recomputed only when a rule changes the ticket
    passes = 0
    changed_in_pass = False
    while passes < max_passes:
        passes += 1
        changed_in_pass = False
        for rule in ordered:
            if rule.key in fired:
                continue
            if not rule.conditions.matches(before, current, changed, context):
                continue
            fired.add(rule.key)
            result = apply_actions(current, rule.actions)
            records.append(FiringRecord(rule, passes, result, current))
            if result.changes:
                current = with_changes(current, result.changes)
                changed = changed_fields(before, current, declared)
                changed_in_pass = True
        if not changed_in_pass:
            break
    return TriggerRun(tuple(records), ticket_after, current, passes, bounded=changed_in_pass and passes == max_passes)


def evaluate_triggers(
    rules: Iterable[Trigger],
    ticket_before: TicketState | None,
    ticket_after: TicketState,
    changes: Iterable[str] = (),
    context: UpdateContext | None = None,
    *,
    max_passes: int = MAX_PASSES,
) -> list[Firing]:
    """The rules that fire on this update, in firing order, each with its actions."""
    return run_triggers(rules, ticket_before, ticket_after, changes, context, max_passes=max_passes).firings
