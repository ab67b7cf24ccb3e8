"""Carrying out what a trigger or an automation decided, on the real ticket, in the caller's
transaction.

The pure core (``actions.apply_actions``) answers field changes and side effects as data; this
module performs them through the paths everything else uses, so a rule's change looks like
anybody's: fields, tags and custom fields through ``tickets.changes.apply`` (audit, events, the
other hooks), team and agent through routing's ``assign`` (capacity, events), an internal note
through ``conversation.service.add`` (a system author), notifications and webhook calls as
events for notify-svc (``ticket.notification_requested`` / ``ticket.webhook_requested``), and a
process through ``processes.runtime.start_process``. The actor is ``trigger:<id>`` or
``automation:<id>``, so the audit trail names the rule behind every change.

A rule must never make the write that fired it fail: each write runs in a savepoint, and one the
ticket refuses (a closed ticket, a team deleted since the rule was saved, a custom field the
form refuses, a hook's 409) or the database refuses is rolled back alone and recorded as
skipped, with the reason.

While a rule's actions are carried out, ``running()`` is true: the trigger hooks return at once
when the executor's own writes run the ticket hooks again (the trigger run's passes already
cover chains of rules).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import asyncpg
from prometheus_client import Counter

from helpdesk_common import events
from helpdesk_common.outbox import enqueue_raw
from helpdesk_common.problems import Problem

from ..conversation import service as conversation
from ..db import outbox
from ..macros import render as placeholders
from ..routing import repository as routing_repository
from ..routing import service as routing
from ..tickets import changes as ticket_changes
from ..tickets import repository as tickets_repository
from . import facts, repository
from .actions import (Action, ActionResult, InternalNote, Notification, ProcessStart, SideEffect, Skipped,
                      WebhookCall, apply_actions)

log = logging.getLogger(__name__)

RULE_EXECUTIONS = Counter("ticket_rule_executions_total",
                          "Triggers and automations that fired on a ticket (rule: the rule's id)", ["kind", "rule"])
#: the event's bounds (events.TicketNotificationRequestedData)
MAX_RECIPIENTS = 20
MAX_NOTIFICATION_BODY = 20_000

_RUNNING: ContextVar[bool] = ContextVar("ticket_rules_running", default=False)


def running() -> bool:
    """True while a rule's actions are being carried out (in this task)."""
    return _RUNNING.get()


@contextlib.contextmanager
def carrying_out() -> Iterator[None]:
    token = _RUNNING.set(True)
    try:
        yield
    finally:
        _RUNNING.reset(token)


# --------------------------------------------------------------------------- pure helpers


def effect_json(effect: SideEffect) -> dict[str, Any]:
    """A side effect as the run record and the dry run show it."""
    if isinstance(effect, InternalNote):
        return {"type": "add_internal_note", "body": effect.body}
    if isinstance(effect, Notification):
        return {"type": "notify", "to": list(effect.recipients), "subject": effect.subject}
    if isinstance(effect, WebhookCall):
        return {"type": "call_webhook", "webhook_id": effect.webhook_id}
    if isinstance(effect, ProcessStart):
        return {"type": "start_process", "process": effect.process}
    return {"type": "skipped", "action": effect.action, "reason": effect.reason}


def skipped(action: str, reason: str) -> dict[str, Any]:
    return effect_json(Skipped(action, reason))


def recipients(wanted: Sequence[str], ticket: Mapping[str, Any]) -> list[str]:
    """An action's ``to`` in notify-svc's terms: ``supervisors`` are the team's supervisors,
    ``followers`` each follower as ``user:<id>``; duplicates dropped, at most MAX_RECIPIENTS."""
    out: list[str] = []
    for name in wanted:
        if name == "supervisors":
            out.append("team_supervisors")
        elif name == "followers":
            out.extend(f"user:{f}" for f in ticket["followers"] or ())
        else:
            out.append(name)
    return list(dict.fromkeys(out))[:MAX_RECIPIENTS]


def rendered(text: str, ticket: Mapping[str, Any]) -> str:
    """``{{ticket.number}}``, ``{{ticket.subject}}``... as macros render them (nothing evaluated)."""
    context = placeholders.context_for(ticket, agent_id=ticket["assignee_id"] or "", agent_name=None)
    return placeholders.render(text, context)


def as_uuid(value: Any) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def rule_ref(rule: str) -> tuple[str, uuid.UUID | None]:
    """``trigger:<id>`` / ``automation:<id>`` → (kind, id); anything else counts as an automation
    without a stored id."""
    kind, _, ident = rule.partition(":")
    return (kind if kind in ("trigger", "automation") else "automation"), as_uuid(ident)


# --------------------------------------------------------------------------- writes


async def _attempt(conn: Any, action: str, write: Callable[[], Awaitable[Any]]) -> tuple[Any, dict[str, Any] | None]:
    """Run ``write`` in a savepoint: (its result, None), or (None, the skip record) when the ticket
    or the database refuses it; the refused write is rolled back alone."""
    try:
        async with conn.transaction():
            return await write(), None
    except Problem as exc:
        return None, skipped(action, exc.detail or exc.title)
    except asyncpg.PostgresError as exc:
        log.exception("a rule's %s was refused by the database", action)
        return None, skipped(action, f"refused by the database ({exc.sqlstate})")


async def _write_fields(conn: Any, row: Mapping[str, Any], values: Mapping[str, Any], *,
                        actor: str) -> tuple[Any, list[dict[str, Any]]]:
    """Status, priority, type, language, tags and custom fields through ``changes.apply``."""
    from ..forms import service as forms  # late: forms builds on the ticket core, as this module does

    write: dict[str, Any] = {}
    for name in ("status", "priority", "type", "language"):
        if name in values:
            write[name] = values[name]
    if "status" in write:
        write["custom_status_id"] = None
    if "tags" in values:
        write["tags"] = list(values["tags"])

    async def apply() -> Any:
        if "custom_fields" in values:
            wanted = dict(values["custom_fields"])
            patch = {k: v for k, v in wanted.items() if row["custom_fields"].get(k) != v}
            patch.update({k: None for k in row["custom_fields"] if k not in wanted})
            if patch:
                write["custom_fields"], form_version = await forms.validate_patch(
                    conn, ticket_type=write.get("type", row["type"]), ticket=row, patch=patch)
                if form_version is not None:
                    write["form_version"] = form_version
        return await ticket_changes.apply(conn, row, write, actor=actor, action="rule_applied", reason="rule")

    new, refused = await _attempt(conn, "set_field", apply)
    if refused is not None:
        refused["reason"] = f"{', '.join(sorted(values))}: {refused['reason']}"
        return row, [refused]
    return new, []


async def _assign(conn: Any, row: Mapping[str, Any], values: Mapping[str, Any], *,
                  actor: str) -> tuple[Any, list[dict[str, Any]]]:
    """Team and agent through routing's assignment path; a team alone is staffed by its strategy."""
    team_id, team = row["team_id"], None
    if "team_id" in values:
        team_id = as_uuid(values["team_id"])
        team = None if team_id is None else await routing_repository.get_team(conn, team_id)
        if team is None:
            return row, [skipped("assign", f"no team {values['team_id']}")]
    assignee, reason = row["assignee_id"], "rule"
    if "assignee_id" in values:
        agent = await routing_repository.get_agent(conn, str(values["assignee_id"]))
        if agent is None or not agent["active"]:
            return row, [skipped("assign", f"no active agent {values['assignee_id']}")]
        assignee = str(values["assignee_id"])
    elif team is not None:
        assignee = await routing.pick_in_team(conn, team, channel=row["channel"] or "api", exclude=())
        reason = team["strategy"] if assignee is not None else "rule"
    new, refused = await _attempt(conn, "assign", lambda: routing.assign(
        conn, row, team_id=team_id, assignee_id=assignee, reason=reason, actor=actor, offered=False))
    return (row, [refused]) if refused is not None else (new, [])


async def _perform(conn: Any, row: Mapping[str, Any], effect: SideEffect, *, rule: str, actor: str,
                   now: datetime) -> tuple[Any, dict[str, Any]]:
    """One side effect; returns the ticket after it and the record of what happened."""
    record = effect_json(effect)
    if isinstance(effect, Skipped):
        return row, record
    if row["merged_into"] is not None:
        return row, skipped(record["type"], "the ticket was merged")
    if isinstance(effect, InternalNote):
        note = conversation.NewMessage(author_kind="system", author_id=None, public=False,
                                       body_text=rendered(effect.body, row), metadata={"rule": rule})
        added, refused = await _attempt(conn, "add_internal_note", lambda: conversation.add(conn, row, note,
                                                                                            actor=actor))
        return (row, refused) if refused is not None else (added[1], record)
    if isinstance(effect, Notification):
        to = recipients(effect.recipients, row)
        if not to:
            return row, skipped("notify", "nobody to notify (the ticket has no followers)")
        await enqueue_raw(conn, outbox, events.TicketNotificationRequested(
            source=ticket_changes.SOURCE, subject=str(row["id"]),
            data=events.TicketNotificationRequestedData(
                ticket_id=row["id"], number=row["number"], rule=rule, to=to,
                subject=rendered(effect.subject, row)[:200], body=rendered(effect.body, row)[:MAX_NOTIFICATION_BODY],
                team_id=row["team_id"], assignee_id=as_uuid(row["assignee_id"]), at=now,
            ),
        ))
        return row, {**record, "to": to}
    if isinstance(effect, WebhookCall):
        await enqueue_raw(conn, outbox, events.TicketWebhookRequested(
            source=ticket_changes.SOURCE, subject=str(row["id"]),
            data=events.TicketWebhookRequestedData(ticket_id=row["id"], number=row["number"], rule=rule,
                                                   webhook_id=uuid.UUID(effect.webhook_id),
                                                   payload=dict(effect.payload), at=now),
        ))
        return row, record
    if isinstance(effect, ProcessStart):
        from ..processes import runtime  # late: processes build on the ticket core, as this module does

        started, refused = await _attempt(conn, "start_process", lambda: runtime.start_process(
            conn, row, actor=actor, ticket_type=effect.process))
        if refused is not None:
            refused["reason"] = f"{effect.process}: {refused['reason']}"
            return row, refused
        if not started:
            return row, skipped("start_process", f"{effect.process}: no active process of that type, or one "
                                                 f"already runs on the ticket")
        return await tickets_repository.get_ticket_raw(conn, row["id"]), {**record, "started": True}
    raise TypeError(f"not a side effect: {effect!r}")  # pragma: no cover - the union is closed


async def carry_out(conn: Any, ticket: Mapping[str, Any], result: ActionResult, *, rule: str,
                    actor: str) -> tuple[Any, list[dict[str, Any]]]:
    """Write ``result``'s field changes, then perform its side effects in order, on the locked
    ``ticket``; returns the new row and what each step did (skips with their reasons)."""
    row: Any = ticket
    done: list[dict[str, Any]] = []
    now = datetime.now(UTC)
    with carrying_out():
        changes = result.changes
        if changes and (row["merged_into"] is not None or row["status"] == "closed"):
            done.append(skipped("set_field", "the ticket is closed"))
            changes = {}
        fields = {k: v for k, v in changes.items() if k not in ("team_id", "assignee_id")}
        if fields:
            row, more = await _write_fields(conn, row, fields, actor=actor)
            done += more
        assignment = {k: v for k, v in changes.items() if k in ("team_id", "assignee_id")}
        if assignment:
            row, more = await _assign(conn, row, assignment, actor=actor)
            done += more
        for effect in result.effects:
            row, record = await _perform(conn, row, effect, rule=rule, actor=actor, now=now)
            done.append(record)
    return row, done


# --------------------------------------------------------------------------- the record


def run_record(*, ticket_id: uuid.UUID, run_id: uuid.UUID, kind: str, rule_id: uuid.UUID, rule_name: str,
               pass_number: int, changes: Mapping[str, Any], effects: list[dict[str, Any]], bounded: bool,
               actor: str) -> dict[str, Any]:
    return {"ticket_id": ticket_id, "run_id": run_id, "rule_kind": kind, "rule_id": rule_id, "rule_name": rule_name,
            "pass": pass_number, "changes": ticket_changes.jsonable(dict(changes)), "effects": effects,
            "bounded": bounded, "actor": actor}


async def record(conn: Any, runs: Sequence[Mapping[str, Any]]) -> None:
    """Keep each firing in ``rule_runs`` and in the ticket's audit trail (``trigger_fired`` /
    ``automation_fired`` by ``<kind>:<id>``), and count it."""
    if not runs:
        return
    await repository.insert_runs(conn, runs)
    for run in runs:
        await tickets_repository.insert_audit(
            conn, ticket_id=run["ticket_id"], actor=f"{run['rule_kind']}:{run['rule_id']}",
            action=f"{run['rule_kind']}_fired",
            changes={"rule_id": str(run["rule_id"]), "rule_name": run["rule_name"], "run_id": str(run["run_id"]),
                     "pass": run["pass"], "changes": run["changes"], "effects": run["effects"],
                     "bounded": run["bounded"]},
        )
        RULE_EXECUTIONS.labels(run["rule_kind"], str(run["rule_id"])).inc()


# --------------------------------------------------------------------------- shared interface 3


async def execute(conn: Any, ticket: Mapping[str, Any], actions: Sequence[Action], *, rule: str,
                  actor: str) -> Mapping[str, Any]:
    """Apply ``actions`` to the locked ``ticket`` as ``rule`` (``automation:<id>`` or
    ``trigger:<id>``), record the run, and return the new ticket row.

    Called by the automation scheduler outside any trigger run, the change it makes is then an
    update like any other: the triggers run on it (``update.actor_kind`` ``automation``)."""
    kind, rule_id = rule_ref(rule)
    state = await facts.state_of(conn, ticket, message_anchors=False)
    result = apply_actions(state, actions)
    outer = running()
    row, done = await carry_out(conn, ticket, result, rule=rule, actor=actor)
    if rule_id is not None:
        stored = await repository.get_rule(conn, kind, rule_id)
        name = stored["name"] if stored is not None else rule
        await record(conn, [run_record(ticket_id=ticket["id"], run_id=uuid.uuid4(), kind=kind, rule_id=rule_id,
                                       rule_name=name, pass_number=1, changes=result.changes, effects=done,
                                       bounded=False, actor=actor)])
    else:  # not a stored rule: the audit trail alone keeps the run
        await tickets_repository.insert_audit(conn, ticket_id=ticket["id"], actor=actor, action=f"{kind}_fired",
                                              changes={"rule": rule, "changes": ticket_changes.jsonable(result.changes),
                                                       "effects": done})
    if not outer and row is not ticket:
        from . import runner  # late: the runner builds on this module

        row = await runner.after_rule(conn, before=ticket, row=row, actor=actor)
    return row
