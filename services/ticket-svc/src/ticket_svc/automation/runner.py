"""Triggers at run time: every ticket creation and update runs the active triggers, in the
transaction of the change that fired them.

Where they run (``tickets/hooks.py``): ``after_create`` (a new ticket: the update is a creation,
the "before" an empty ticket), ``after_message`` (a message, with ``update.message`` public or
internal and the author's kind) and ``after_change`` for every other change. A message also
changes the ticket (its counters, maybe its status), which runs ``after_change`` first; that
call is left to ``after_message``, so one update is one run.

A run is the pure ``triggers.run_triggers`` (at most 5 passes, each rule at most once) over the
ticket's facts; what fired is then carried out by the executor, rule by rule in firing order,
with the actor ``trigger:<id>``. The executor's own writes run the hooks again: those calls
return at once (``executor.running()``), since the passes already cover chains of rules.

``main`` imports this module after ``processes.runtime``, so a new ticket's process has started
(and its step is known) when the triggers see it.

Cost with no triggers: one cached list, no query. With triggers: the facts come from the row;
the process step is read only when a trigger's condition looks at it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from prometheus_client import Histogram

from ..tickets import hooks
from ..tickets import repository as tickets_repository
from . import executor, facts, service
from .conditions import TicketState, UpdateContext
from .triggers import Trigger, TriggerRun, run_triggers

TRIGGER_EVALUATION_SECONDS = Histogram(
    "ticket_trigger_evaluation_seconds", "Time to evaluate the triggers on one ticket update (not to carry them out)",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1),
)

#: actor ref prefix -> update.actor_kind
_ACTOR_KINDS = {"user": "agent", "channel": "customer", "visitor": "customer", "customer": "customer",
                "automation": "automation", "trigger": "automation", "system": "system"}
#: message author_kind -> update.actor_kind
_AUTHOR_KINDS = {"customer": "customer", "agent": "agent", "system": "system"}


def actor_kind(actor: str) -> str:
    """Who made an update, from its actor ref (``user:…`` is an agent, ``channel:…`` the customer
    writing through a channel, ``automation:…`` the scheduler, anything else the system)."""
    return _ACTOR_KINDS.get(actor.partition(":")[0], "system")


def declared_changes(before: Mapping[str, Any], row: Mapping[str, Any]) -> tuple[str, ...]:
    """Changes the facts cannot show: a custom status switched within its category is a status change."""
    return ("status",) if before["custom_status_id"] != row["custom_status_id"] else ()


async def _states(conn: Any, before: Mapping[str, Any] | None,
                  row: Mapping[str, Any]) -> tuple[TicketState | None, TicketState]:
    step = await facts.current_step_key(conn, row["id"]) if await service.triggers_need_step(conn) else None
    after = facts.state_from_row(row, step=step)
    return (None if before is None else facts.state_from_row(before, step=step)), after


def evaluate(rules: Sequence[Trigger], before: TicketState | None, after: TicketState, declared: Sequence[str],
             context: UpdateContext) -> TriggerRun:
    started = time.perf_counter()
    try:
        return run_triggers(rules, before, after, declared, context)
    finally:
        TRIGGER_EVALUATION_SECONDS.observe(time.perf_counter() - started)


async def run_on(conn: Any, rules: Sequence[Trigger], *, before: Mapping[str, Any] | None, row: Mapping[str, Any],
                 context: UpdateContext, declared: Sequence[str] = ()) -> Mapping[str, Any]:
    """Run ``rules`` on the update ``before`` → ``row`` and carry out what fired; the new row."""
    state_before, state_after = await _states(conn, before, row)
    run = evaluate(rules, state_before, state_after, declared, context)
    if not run.records:
        return row
    # the newest row: another hook of this change may have written since ``row`` was read
    row = await tickets_repository.get_ticket_raw(conn, row["id"]) or row
    run_id = uuid.uuid4()
    runs = []
    for firing in run.records:
        actor = f"trigger:{firing.rule.id}"
        row, done = await executor.carry_out(conn, row, firing.result, rule=actor, actor=actor)
        runs.append(executor.run_record(
            ticket_id=row["id"], run_id=run_id, kind="trigger", rule_id=uuid.UUID(str(firing.rule.id)),
            rule_name=firing.rule.name,
            pass_number=firing.pass_number, changes=firing.result.changes, effects=done, bounded=run.bounded,
            actor=actor))
    await executor.record(conn, runs)
    return row


async def after_rule(conn: Any, *, before: Mapping[str, Any], row: Mapping[str, Any], actor: str) -> Mapping[str, Any]:
    """The triggers on the change an automation just made (``update.actor_kind`` automation)."""
    rules = await service.active_triggers(conn)
    if not rules:
        return row
    return await run_on(conn, rules, before=before, row=row, declared=declared_changes(before, row),
                        context=UpdateContext(event="updated", actor_kind="automation"))


# --------------------------------------------------------------------------- the hooks


@hooks.after_create
async def _on_create(conn: Any, row: Mapping[str, Any], actor: str) -> None:
    if executor.running():
        return
    rules = await service.active_triggers(conn)
    if not rules:
        return
    context = UpdateContext(event="created", actor_kind=actor_kind(actor),  # type: ignore[arg-type]
                            message="public" if row["public_message_count"] else "internal")
    await run_on(conn, rules, before=None, row=row, context=context)


async def _create_quiet(conn: Any, ticket_type: str | None) -> bool:
    return executor.running() or not await service.active_triggers(conn)


hooks.quiet_when(_on_create, _create_quiet)


@hooks.after_change
async def _on_change(conn: Any, before: Mapping[str, Any], row: Mapping[str, Any], audited: Mapping[str, Any],
                     actor: str) -> None:
    if executor.running() or row["message_count"] != before["message_count"]:
        return  # the rules' own writes; or a message's change, which after_message runs
    if row["deleted_at"] is not None or before["deleted_at"] is not None:
        return  # a deletion or a restore is no update a trigger answers (Zendesk's do not either)
    rules = await service.active_triggers(conn)
    if not rules:
        return
    await run_on(conn, rules, before=before, row=row, declared=declared_changes(before, row),
                 context=UpdateContext(event="updated", actor_kind=actor_kind(actor)))  # type: ignore[arg-type]


@hooks.after_message
async def _on_message(conn: Any, before: Mapping[str, Any], message: Mapping[str, Any], row: Mapping[str, Any],
                      actor: str) -> None:
    if executor.running():
        return
    rules = await service.active_triggers(conn)
    if not rules:
        return
    context = UpdateContext(event="updated", actor_kind=_AUTHOR_KINDS.get(message["author_kind"], "system"),  # type: ignore[arg-type]
                            message="public" if message["public"] else "internal")
    await run_on(conn, rules, before=before, row=row, declared=declared_changes(before, row), context=context)
