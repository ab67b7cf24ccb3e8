"""Triggers and automations at the database edge: saving, ordering, the cached active sets the
write path and the scheduler read, and the dry run on a stored ticket. Flushes, never commits:
the endpoint's transaction does.

The active sets are read on every ticket change, so they are cached per process and kind: an
admin write in this process empties its cache at once, other replicas reload within
``CACHE_SECONDS`` (as routing rules do). With no rule of a kind configured the cached answer is
an empty list and the hooks return before reading anything else.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from helpdesk_common.concurrency import check_version
from helpdesk_common.problems import Problem

from ..routing import repository as routing_repository
from ..routing import rules as routing
from ..sla import calendars
from . import actions as action_models
from . import conditions, dry_run, facts, repository
from .conditions import TicketState, UpdateContext
from .schedule import Automation, AutomationIn
from .schemas import AutomationWrite, DryRunIn, HypotheticalChanges, TriggerWrite
from .triggers import Trigger, TriggerIn

log = logging.getLogger(__name__)

TRIGGER = "trigger"
AUTOMATION = "automation"
KINDS = (TRIGGER, AUTOMATION)
CACHE_SECONDS = 2.0
#: positions a reordering hands out (room to insert between two rules without renumbering)
POSITION_STEP = 10


# --------------------------------------------------------------------------- parsing stored rules


def stored_form(body: TriggerIn | AutomationIn) -> dict[str, Any]:
    """The columns of a rule as the API validated it (conditions and actions as JSON)."""
    return {
        "name": body.name, "description": getattr(body, "description", ""), "position": body.position,
        "active": body.active, "conditions": body.conditions.model_dump(mode="json"),
        "actions": [a.model_dump(mode="json") for a in body.actions],
    }


def _validated(kind: str, row: Mapping[str, Any]) -> TriggerIn | AutomationIn:
    model = TriggerIn if kind == TRIGGER else AutomationIn
    return model.model_validate({"name": row["name"], "active": row["active"], "position": row["position"],
                                 "conditions": row["conditions"], "actions": row["actions"]})


def trigger_of(row: Mapping[str, Any]) -> Trigger:
    body = _validated(TRIGGER, row)
    assert isinstance(body, TriggerIn)
    return body.to_trigger(trigger_id=str(row["id"]))  # text: the run's order compares ids as text


def automation_of(row: Mapping[str, Any]) -> Automation:
    body = _validated(AUTOMATION, row)
    assert isinstance(body, AutomationIn)
    return body.to_automation(automation_id=row["id"])


def _parse_all(kind: str, rows: Iterable[Mapping[str, Any]]) -> list[Any]:
    """Stored rules as the pure core's values; a row the current code no longer accepts is left
    out and logged (it would otherwise stop every ticket change)."""
    parse = trigger_of if kind == TRIGGER else automation_of
    parsed = []
    for row in rows:
        try:
            parsed.append(parse(row))
        except (ValidationError, routing.RuleError, ValueError):
            log.exception("stored %s %s is no longer valid; skipped", kind, row["id"])
    return parsed


def uses_field(rules: Iterable[Trigger | Automation], name: str) -> bool:
    return any(c.field == name for r in rules for c in (*r.conditions.all, *r.conditions.any))


# --------------------------------------------------------------------------- the cached active sets


@dataclass(slots=True)
class _Active:
    loaded_at: float = -1e9
    rules: list[Any] = field(default_factory=list)
    #: a condition looks at the process step (so the step is worth a read)
    needs_step: bool = False


_active: dict[str, _Active] = {kind: _Active() for kind in KINDS}


def invalidate(kind: str | None = None) -> None:
    """Forget this process's cached rules (other replicas reload within CACHE_SECONDS)."""
    for name in (kind,) if kind else KINDS:
        _active[name] = _Active()


async def _active_set(conn: Any, kind: str) -> _Active:
    cached = _active[kind]
    if time.monotonic() - cached.loaded_at < CACHE_SECONDS:
        return cached
    rules = _parse_all(kind, await repository.list_rules(conn, kind, active_only=True))
    fresh = _Active(time.monotonic(), rules, uses_field(rules, "step"))
    _active[kind] = fresh
    return fresh


async def active_triggers(conn: Any) -> list[Trigger]:
    return (await _active_set(conn, TRIGGER)).rules


async def triggers_need_step(conn: Any) -> bool:
    return (await _active_set(conn, TRIGGER)).needs_step


async def active_automations(conn: Any) -> list[Automation]:
    """The active automations, cached like the triggers (the scheduler plans with them)."""
    return (await _active_set(conn, AUTOMATION)).rules


# --------------------------------------------------------------------------- admin writes


def to_read(row: Mapping[str, Any]) -> dict[str, Any]:
    return {name: row[name] for name in ("id", "name", "description", "position", "active", "conditions", "actions",
                                         "version", "created_by", "created_at", "updated_by", "updated_at")}


def not_found(kind: str, rule_id: uuid.UUID) -> Problem:
    return Problem(404, "not-found", f"{kind.capitalize()} not found", f"No {kind} {rule_id}.")


def _error(loc: tuple[str | int, ...], message: str, code: str) -> dict[str, Any]:
    return {"loc": ("body", *loc), "msg": message, "type": code}


async def check_references(conn: Any, body: TriggerIn | AutomationIn) -> None:
    """422 naming each ``assign`` action whose team is not a team (user ids are the gateway's and
    ticket-svc's copy may lag, so they are checked when the rule runs; a process or webhook may
    be defined after the rule that names it)."""
    errors = []
    for index, action in enumerate(body.actions):
        if not isinstance(action, action_models.Assign) or action.team_id is None:
            continue
        loc = ("actions", index, "assign", "team_id")
        try:
            team_id = uuid.UUID(action.team_id)
        except ValueError:
            errors.append(_error(loc, "a team id is a UUID", "invalid_value"))
            continue
        if await routing_repository.get_team(conn, team_id) is None:
            errors.append(_error(loc, f"no team {team_id}", "not_found"))
    if errors:
        raise RequestValidationError(errors)


async def after_write(conn: Any, kind: str) -> None:
    """What every admin write of ``kind`` does in its transaction besides the row: automations
    tell the schedulers (at commit) to re-plan open tickets."""
    if kind == AUTOMATION:
        await repository.notify_automations_changed(conn)


async def _next_position(conn: Any, kind: str) -> int:
    rows = await repository.list_rules(conn, kind)
    return (max(r["position"] for r in rows) + POSITION_STEP) if rows else 0


async def create(conn: Any, kind: str, body: TriggerWrite | AutomationWrite, *, actor: str) -> Any:
    await check_references(conn, body)
    values = stored_form(body)
    if "position" not in body.model_fields_set:
        values["position"] = await _next_position(conn, kind)
    row = await repository.insert_rule(conn, kind, rule_id=uuid.uuid4(), values=values, actor=actor)
    await after_write(conn, kind)
    return row


async def replace(conn: Any, kind: str, rule_id: uuid.UUID, body: TriggerWrite | AutomationWrite, *,
                  if_match: str | None, actor: str) -> Any:
    current = await repository.get_rule(conn, kind, rule_id, lock=True)
    if current is None:
        raise not_found(kind, rule_id)
    check_version(current["version"], if_match, what=kind)
    await check_references(conn, body)
    values = stored_form(body)
    if "position" not in body.model_fields_set:
        values["position"] = current["position"]
    row = await repository.update_rule(conn, kind, rule_id=rule_id, values=values, actor=actor)
    await after_write(conn, kind)
    return row


async def delete(conn: Any, kind: str, rule_id: uuid.UUID, *, if_match: str | None) -> None:
    current = await repository.get_rule(conn, kind, rule_id, lock=True)
    if current is None:
        raise not_found(kind, rule_id)
    check_version(current["version"], if_match, what=kind)
    await repository.delete_rule(conn, kind, rule_id)
    await after_write(conn, kind)


def order_errors(existing: Sequence[uuid.UUID], wanted: Sequence[uuid.UUID]) -> list[dict[str, Any]]:
    """Why ``wanted`` is not an order of exactly the ``existing`` rules (pure)."""
    errors = []
    seen: set[uuid.UUID] = set()
    known = set(existing)
    for index, rule_id in enumerate(wanted):
        if rule_id in seen:
            errors.append(_error(("ids", index), f"{rule_id} is listed twice", "cross_field"))
        elif rule_id not in known:
            errors.append(_error(("ids", index), f"no rule {rule_id}", "not_found"))
        seen.add(rule_id)
    missing = [str(r) for r in existing if r not in seen]
    if missing:
        errors.append(_error(("ids",), f"the order must list every rule; missing: {', '.join(missing)}",
                             "cross_field"))
    return errors


async def reorder(conn: Any, kind: str, ids: Sequence[uuid.UUID], *, actor: str) -> list[Any]:
    """Give the rules the order ``ids`` (every rule, each once): positions 0, 10, 20...."""
    existing = [row["id"] for row in await repository.lock_all(conn, kind)]
    errors = order_errors(existing, ids)
    if errors:
        raise RequestValidationError(errors)
    await repository.set_positions(conn, kind, ordered_ids=ids, step=POSITION_STEP, actor=actor)
    await after_write(conn, kind)
    return await repository.list_rules(conn, kind)


# --------------------------------------------------------------------------- dry run


def hypothetical(state: TicketState, changes: HypotheticalChanges) -> TicketState:
    """``state`` with the changes an update would make (pure)."""
    given = changes.model_dump(exclude_unset=True)
    values: dict[str, Any] = {}
    for name in ("status", "priority", "type", "language", "subject", "assignee_id"):
        if name in given:
            values[name] = given[name] if name != "subject" else (given[name] or "")
    if "team_id" in given:
        values["team_id"] = None if given["team_id"] is None else str(given["team_id"])
    if changes.add_tags or changes.remove_tags:
        values["tags"] = action_models._tags_after(state.tags, add=changes.add_tags, remove=changes.remove_tags)
    if changes.custom_fields:
        merged = {**state.custom_fields, **changes.custom_fields}
        values["custom_fields"] = {k: v for k, v in merged.items() if v is not None}
    return conditions.with_changes(state, values)


async def dry_run_on(conn: Any, ticket: Mapping[str, Any], body: DryRunIn, *, now: datetime) -> dry_run.DryRun:
    """The dry run of ``body`` on the stored ``ticket``, with the rules as stored now."""
    triggers = _parse_all(TRIGGER, await repository.list_rules(conn, TRIGGER, active_only=True))
    automations = _parse_all(AUTOMATION, await repository.list_rules(conn, AUTOMATION, active_only=True))
    state = await facts.state_of(conn, ticket)
    after = state if body.changes is None else hypothetical(state, body.changes)
    before = conditions.NOTHING if body.event == "created" else state
    context = UpdateContext(event=body.event, actor_kind=body.actor_kind, message=body.message)
    business = any(c.calendar == "business" for a in automations for c in a.time_conditions)
    business_time_fn = await calendars.business_time_fn(conn, ticket["team_id"]) if business else None
    return dry_run.dry_run(triggers, automations, after, now, business_time_fn, before=before, context=context)
