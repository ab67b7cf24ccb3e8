"""Running processes on tickets: starting, deciding, expiring, advancing, in the caller's transaction.

The step machine (``machine.py``) decides; this module is its edge: it resolves who decides (a
team or a role becomes its active users when the step starts), evaluates skip conditions on the
ticket as it is at that moment, stores each run of a step (``ticket_steps``), emits the events
and audits every decision and transition. Every path that decides — the API, the customer's
signed link, an e-mail reply, the clock — goes through ``decide`` or the deadline timer here,
with the ticket's row locked by the caller, so decisions on one ticket are serialised and the
machine's answer is the only answer.

The ticket's status and the process (docs/workflow.md, "Running a process"):

- solving a ticket while an approval or countersign step is active is refused (409
  ``step_pending``): the approvers have not said yes yet;
- solving a ticket whose current step is a task completes the task (the solver's ``complete``);
- a customer confirmation starts when the ticket is solved: reached on an unsolved ticket, its
  step waits (``pending``) until an agent solves the ticket;
- confirmed → the ticket closes; rejected or replied → the ticket reopens and the process goes
  back to the previous step; a timeout closes or reopens per the definition; a rejection or an
  expiry whose follow-up is ``close`` closes the ticket (the reason is audited);
- closing or merging a ticket by hand cancels the running step (``step_completed`` with outcome
  ``cancelled``, so sla-svc stops timing it) and the process.

The ticket changes this module makes go through ``tickets.changes.apply`` (events, audit and the
other hooks run as for any change); ``_OWN`` marks them so this module's own hooks ignore them.
"""

from __future__ import annotations

import contextvars
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter, Histogram

from helpdesk_common import events
from helpdesk_common.outbox import enqueue_raw
from helpdesk_common.problems import Problem

from ..db import outbox
from ..routing.rules import TicketFacts
from ..tickets import changes, hooks
from ..tickets import repository as tickets_repository
from ..timers import service as timers
from . import definitions, machine, service
from . import runs_repository as repository

log = logging.getLogger(__name__)

SOURCE = changes.SOURCE
#: the actor of what the clock does (expiries, timeouts)
CLOCK_ACTOR = "system:process"
#: the timer kind of approval expiries and confirmation timeouts (ticket_svc.timers)
DEADLINE_TIMER = "step_deadline"
#: how often a replica that has seen no definition at all looks again
DEFINED_RECHECK_SECONDS = 2.0

STEP_DURATION = Histogram(
    "ticket_process_step_duration_seconds", "How long process steps ran, from start to end",
    ["kind", "outcome"], buckets=(60, 300, 900, 3600, 4 * 3600, 86400, 3 * 86400, 7 * 86400, 30 * 86400))
DECISIONS = Counter("ticket_process_decisions_total", "Decisions taken on process steps", ["kind", "decision"])

StepHook = Callable[[Any, Mapping[str, Any], Mapping[str, Any]], Awaitable[None]]
_step_started_hooks: dict[str, list[StepHook]] = {}
#: set while this module changes a ticket, so its own hooks leave that change alone
_OWN: contextvars.ContextVar[bool] = contextvars.ContextVar("process_own_change", default=False)


class _Defined:
    """Whether any process definition exists: definitions are never deleted (a deactivation is a
    version), so once true it stays true; while false, looked up again every few seconds or
    after this replica saved one, so a deployment without processes pays nothing per ticket."""

    def __init__(self) -> None:
        self.known = False
        self.checked_at = -1e9
        self.generation = -1

    async def get(self, conn: Any) -> bool:
        if self.known:
            return True
        if service.GENERATION == self.generation and time.monotonic() - self.checked_at < DEFINED_RECHECK_SECONDS:
            return False
        self.known = await repository.any_definition(conn)
        self.checked_at, self.generation = time.monotonic(), service.GENERATION
        return self.known


DEFINED = _Defined()


def on_step_started(kind: str) -> Callable[[StepHook], StepHook]:
    """Register ``hook(conn, ticket, step)`` to run in the transaction when a step of ``kind``
    starts (after its row and events are written), e.g. asking the customer to confirm."""

    def register(hook: StepHook) -> StepHook:
        found = _step_started_hooks.setdefault(kind, [])
        if hook not in found:
            found.append(hook)
        return hook

    return register


# --------------------------------------------------------------------------- pure helpers


def facts_of(ticket: Mapping[str, Any]) -> TicketFacts:
    """The ticket as a step's ``when`` sees it (routing's facts)."""
    return TicketFacts(channel=ticket["channel"], type=ticket["type"], priority=ticket["priority"],
                       language=ticket["language"], tags=tuple(ticket["tags"] or ()),
                       customer_tier=ticket["customer_tier"], subject=ticket["subject"] or "",
                       custom_fields=dict(ticket["custom_fields"] or {}))


def skipped_keys(steps: Sequence[definitions.StepDef], ticket: Mapping[str, Any]) -> frozenset[str]:
    facts = facts_of(ticket)
    return frozenset(step.key for step in steps if not definitions.applies(step, facts))


def user_id_of(actor: str) -> str:
    """The machine's actor: a user's id (approvers are user ids); any other actor as it is."""
    return actor.removeprefix("user:")


def waiting_for(step: machine.Step, state: machine.StepState) -> list[str]:
    """Who may decide now and has not: the approvals queue's index."""
    if state.outcome.finished:
        return []
    decided = {d.actor for d in state.decisions}
    if isinstance(step, machine.ApprovalStep):
        return sorted(step.approvers - decided)
    if isinstance(step, machine.CountersignStep):
        signed = machine.signed_parties(state.decisions)
        if step.order == "sequential":
            turn = machine.next_party(step, state.decisions)
            return [] if turn is None else sorted(step.parties[turn] - decided)
        return sorted(set().union(*(p for i, p in enumerate(step.parties) if i not in signed)) - decided)
    return []


def outcome_name(kind: str, state: machine.StepState) -> str:
    """``step_completed``'s outcome: approved / signed / confirmed / done, rejected, expired or
    (a customer confirmation's timeout) timed_out."""
    outcome = state.outcome
    if outcome.status == "completed":
        return outcome.result or "done"
    if outcome.status == "expired":
        return "timed_out" if kind == "customer_confirmation" else "expired"
    return "rejected"


def confirmation_answer(state: machine.StepState) -> str:
    if state.outcome.status == "expired":
        return "timed_out"
    last = state.decisions[-1].decision if state.decisions else "reject"
    return {"confirm": "confirmed", "reply": "replied"}.get(last, "rejected")


def refusal(reason: str, *, step: str) -> Problem:
    """The problem for a machine refusal; ``code`` is the machine's reason, the contract."""
    status = {"wrong_decision_for_kind": 422, "not_an_approver": 403}.get(reason, 409)
    return Problem(status, reason.replace("_", "-"), reason.replace("_", " ").capitalize(),
                   machine.REFUSAL_MESSAGES.get(reason, reason), code=reason, step=step)


def step_problem(status: int, code: str, detail: str, *, step: str, **extra: Any) -> Problem:
    return Problem(status, code.replace("_", "-"), code.replace("_", " ").capitalize(), detail, code=code, step=step,
                   **extra)


def _extras(row: Mapping[str, Any]) -> dict[str, Any]:
    """What the machine state does not keep about each decision: the comment and the channel."""
    data = row["state"] or {}
    return {"comments": dict(data.get("comments") or {}), "via": dict(data.get("via") or {})}


def _state_json(state: machine.StepState, extras: Mapping[str, Any]) -> dict[str, Any]:
    return {**machine.state_to_json(state), **extras}


def step_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """A step run as the API shows it: who decides, who decided what and when, with comments."""
    data = row["state"] or {}
    extras = _extras(row)
    decisions = [{"actor": d["actor"], "decision": d["decision"], "at": d["at"], "party": d.get("party"),
                  "comment": extras["comments"].get(d["actor"]), "via": extras["via"].get(d["actor"])}
                 for d in data.get("decisions") or ()]
    return {
        "id": row["id"], "key": row["key"], "kind": row["kind"], "name": row["name"], "position": row["position"],
        "status": row["status"], "outcome": row["outcome"], "approvers": list(row["approvers"]),
        "parties": [list(p) for p in row["parties"]], "waiting_for": list(row["waiting_for"]),
        "decisions": decisions, "target_minutes": row["target_minutes"], "deadline": row["deadline"],
        "started_at": row["started_at"], "finished_at": row["finished_at"],
        "settings": row["settings"],
    }


# --------------------------------------------------------------------------- loading


async def steps_of_version(conn: Any, ticket_type: str, version: int) -> list[definitions.StepDef]:
    """The steps of the version a process runs (one primary-key read; not cached across
    requests, so a cache can never outlive the database it came from)."""
    found = await service.version_steps(conn, ticket_type, version)
    if found is None:  # pragma: no cover - versions are never deleted
        raise LookupError(f"process version {ticket_type!r} {version} is gone")
    return found


def machine_step(row: Mapping[str, Any]) -> machine.Step:
    """The machine's step for a stored run, with the approvers resolved when it started."""
    step_def = definitions.parse_steps([row["settings"]])[0]
    return machine.from_definition(step_def, approvers=row["approvers"], parties=row["parties"])


def machine_state(row: Mapping[str, Any]) -> machine.StepState:
    return machine.state_from_json(row["state"])


async def _resolve(conn: Any, step: definitions.StepDef) -> tuple[list[str], list[list[str]]]:
    """(approvers, parties) as user ids: named users as named, a team's active members, a
    role's active holders."""
    if isinstance(step, definitions.ApprovalStepDef):
        teams = await repository.active_team_members(conn, step.approvers.teams)
        roles = await repository.active_role_holders(conn, step.approvers.roles)
        found = [*step.approvers.users, *(u for t in step.approvers.teams for u in teams[t]),
                 *(u for r in step.approvers.roles for u in roles[r])]
        return list(dict.fromkeys(found)), []
    if isinstance(step, definitions.CountersignStepDef):
        team_ids = [p.team for p in step.parties if isinstance(p, definitions.TeamParty)]
        role_names = [p.role for p in step.parties if isinstance(p, definitions.RoleParty)]
        teams = await repository.active_team_members(conn, team_ids)
        roles = await repository.active_role_holders(conn, role_names)
        parties = [[p.user] if isinstance(p, definitions.UserParty)
                   else teams[p.team] if isinstance(p, definitions.TeamParty) else roles[p.role]
                   for p in step.parties]
        return [], parties
    return [], []


def _build(step: definitions.StepDef, approvers: list[str], parties: list[list[str]]) -> machine.Step:
    try:
        return machine.from_definition(step, approvers=approvers, parties=parties)
    except machine.InvalidStep as exc:
        raise step_problem(409, "step_unstaffed",
                           f"Step {step.key!r} cannot start: {exc} (its teams or roles have too few active users).",
                           step=step.key) from exc


# --------------------------------------------------------------------------- events and audit


async def _emit(conn: Any, *evts: Any) -> None:
    await enqueue_raw(conn, outbox, *evts)


async def _audit(conn: Any, ticket: Mapping[str, Any], actor: str, action: str, details: dict[str, Any]) -> None:
    await tickets_repository.insert_audit(conn, ticket_id=ticket["id"], actor=actor, action=action,
                                          changes=changes.jsonable(details))


async def _change(conn: Any, ticket: Mapping[str, Any], values: dict[str, Any], *, actor: str, action: str) -> Any:
    """Change the ticket as the process (through ``changes.apply``), unseen by this module's hooks."""
    if ticket["merged_into"] is not None or ticket["status"] == "closed":
        return ticket
    token = _OWN.set(True)
    try:
        return await changes.apply(conn, ticket, values, actor=actor, action=action)
    finally:
        _OWN.reset(token)


# --------------------------------------------------------------------------- starting steps


async def start_process(conn: Any, ticket: Mapping[str, Any], *, actor: str, ticket_type: str | None = None) -> bool:
    """Start the current version of ``ticket_type``'s process (default: the ticket's type) on the
    locked ``ticket``; False when the type has no active definition, the ticket is closed or
    merged, or a process already runs on it. A first step whose teams have nobody active is a
    409 ``step_unstaffed`` (the caller's transaction decides what that means)."""
    ticket_type = ticket_type or ticket["type"]
    if not ticket_type or ticket["status"] == "closed" or ticket["merged_into"] is not None:
        return False
    definition = await service.current_definition(conn, ticket_type)
    if definition is None:
        return False
    if await repository.running_process(conn, ticket["id"]) is not None:
        return False
    now = datetime.now(UTC)
    process = await repository.insert_process(conn, process_id=uuid.uuid4(), ticket_id=ticket["id"],
                                              ticket_type=ticket_type, version=definition.version,
                                              started_by=actor, started_at=now)
    if process is None:
        return False
    await _audit(conn, ticket, actor, "process_started", {"process_id": process["id"], "ticket_type": ticket_type,
                                                          "version": definition.version})
    steps = definition.steps
    skipped = skipped_keys(steps, ticket)
    first = machine.start(steps, skipped)
    await _record_skipped(conn, ticket, process, steps, range(0, first.index if isinstance(first, machine.Goto)
                                                                else len(steps)), actor=actor)
    if isinstance(first, machine.Finished):
        await repository.end_process(conn, process["id"], state="finished", at=now)
        await _audit(conn, ticket, actor, "process_finished", {"process_id": process["id"]})
        return True
    await _start_step(conn, ticket, process, steps, first.index, actor=actor)
    return True


async def _record_skipped(conn: Any, ticket: Mapping[str, Any], process: Mapping[str, Any],
                          steps: Sequence[definitions.StepDef], indices: Sequence[int], *, actor: str) -> None:
    """A row per step passed over because its ``when`` does not hold: the history says why it
    never ran. No event: sla-svc never times a step that did not run."""
    now = datetime.now(UTC)
    for index in indices:
        step = steps[index]
        await repository.insert_step(conn, {
            "id": uuid.uuid4(), "process_id": process["id"], "ticket_id": ticket["id"], "position": index,
            "key": step.key, "kind": step.kind, "name": step.name, "status": "skipped", "outcome": "skipped",
            "settings": definitions.dump_steps([step])[0], "target_minutes": step.target_minutes,
            "finished_at": now})
        await _audit(conn, ticket, actor, "step_skipped", {"step": step.key, "position": index})


async def _start_step(conn: Any, ticket: Mapping[str, Any], process: Mapping[str, Any],
                      steps: Sequence[definitions.StepDef], index: int, *, actor: str) -> None:
    step = steps[index]
    approvers, parties = await _resolve(conn, step)
    built = _build(step, approvers, parties)
    row = await repository.insert_step(conn, {
        "id": uuid.uuid4(), "process_id": process["id"], "ticket_id": ticket["id"], "position": index,
        "key": step.key, "kind": step.kind, "name": step.name, "status": "pending", "approvers": approvers,
        "parties": parties, "settings": definitions.dump_steps([step])[0], "target_minutes": step.target_minutes})
    await repository.set_current_step(conn, process["id"], row["id"])
    if step.kind == "customer_confirmation" and ticket["status"] != "solved":
        # the customer confirms a resolution: the step starts when an agent solves the ticket
        await _audit(conn, ticket, actor, "step_waiting", {"step": step.key, "step_id": row["id"],
                                                           "until": "the ticket is solved"})
        return
    await _activate(conn, ticket, process, row, built, actor=actor)


async def _activate(conn: Any, ticket: Mapping[str, Any], process: Mapping[str, Any], row: Mapping[str, Any],
                    step: machine.Step, *, actor: str) -> Any:
    """Start a stored step run: its clock, its events, its deadline timer, its hooks."""
    now = datetime.now(UTC)
    state = machine.StepState.start(now)
    due = machine.deadline(step, state)
    row = await repository.update_step(conn, row["id"], {
        "status": "active", "state": _state_json(state, {}), "waiting_for": waiting_for(step, state),
        "deadline": due, "started_at": now})
    ref = changes.ref(ticket, actor)
    evts: list[Any] = [events.TicketStepStarted(source=SOURCE, subject=str(ticket["id"]), data=events.TicketStepStartedData(
        **ref, step_id=row["id"], step=row["key"], kind=row["kind"], target_minutes=row["target_minutes"],
        process_version=process["version"], started_at=now))]
    if row["kind"] in ("approval", "countersign"):
        evts.append(_approval_requested(ticket, row, step, actor=actor, at=now, due=due))
    await _emit(conn, *evts)
    if due is not None:
        await timers.schedule(conn, kind=DEADLINE_TIMER, ticket_id=ticket["id"], ref=str(row["id"]), due_at=due)
    await _audit(conn, ticket, actor, "step_started", {"step": row["key"], "step_id": row["id"], "kind": row["kind"],
                                                       "waiting_for": list(row["waiting_for"]), "deadline": due})
    view = {"id": row["id"], "key": row["key"], "kind": row["kind"], "name": row["name"],
            "started_at": row["started_at"], "deadline": row["deadline"], "settings": row["settings"]}
    for hook in _step_started_hooks.get(row["kind"], ()):
        await hook(conn, ticket, view)
    return row


def _approval_requested(ticket: Mapping[str, Any], row: Mapping[str, Any], step: machine.Step, *, actor: str,
                        at: datetime, due: datetime | None) -> Any:
    rule = step.rule if isinstance(step, machine.ApprovalStep) else getattr(step, "order", None)
    n = step.n if isinstance(step, machine.ApprovalStep) else None
    return events.TicketApprovalRequested(source=SOURCE, subject=str(ticket["id"]), data=events.TicketApprovalRequestedData(
        **changes.ref(ticket, actor), step_id=row["id"], step=row["key"], name=row["name"], kind=row["kind"],
        approvers=list(row["waiting_for"])[:500], rule=rule, n=n, expires_at=due, requested_at=at))


# --------------------------------------------------------------------------- deciding


async def current_step(conn: Any, ticket_id: uuid.UUID) -> Mapping[str, Any] | None:
    """The running process's current step (id, key, kind, name, status, started_at, deadline,
    settings): ``active``, or ``pending`` (a confirmation waiting for the ticket to be solved);
    None when no process runs."""
    process = await repository.running_process(conn, ticket_id)
    if process is None or process["current_step_id"] is None:
        return None
    row = await repository.get_step(conn, process["current_step_id"])
    if row is None:  # pragma: no cover - written together
        return None
    return {"id": row["id"], "key": row["key"], "kind": row["kind"], "name": row["name"], "status": row["status"],
            "started_at": row["started_at"], "deadline": row["deadline"], "settings": row["settings"]}


async def _step_to_decide(conn: Any, ticket: Mapping[str, Any], step_key: str) -> tuple[Any, Any]:
    """(process, step run) for a decision on ``step_key``; the refusal when it is not the active step."""
    process = await repository.running_process(conn, ticket["id"])
    if process is None:
        process = await repository.latest_process(conn, ticket["id"])
        if process is None:
            raise step_problem(404, "no_process", "No process runs on this ticket.", step=step_key)
    current = await repository.get_step(conn, process["current_step_id"]) if process["current_step_id"] else None
    if current is not None and current["key"] == step_key and current["status"] == "active":
        return process, current
    found = await repository.latest_step_with_key(conn, process["id"], step_key)
    if found is not None and found["status"] not in ("active", "pending"):
        raise step_problem(409, "step_finished", f"Step {step_key!r} is {found['status']} and takes no more decisions.",
                           step=step_key)
    steps = await steps_of_version(conn, process["ticket_type"], process["version"])
    if definitions.step_by_key(steps, step_key) is None:
        raise step_problem(404, "no_step", f"This ticket's process has no step {step_key!r}.", step=step_key)
    detail = (f"Step {step_key!r} starts when the ticket is solved." if found is not None
              else f"Step {step_key!r} is not the current step.")
    raise step_problem(409, "step_not_current", detail, step=step_key,
                       current_step=current["key"] if current is not None else None)


async def decide(conn: Any, ticket: Mapping[str, Any], *, step_key: str, actor: str, decision: str,
                 comment: str | None = None, via: str = "api", customer_id: uuid.UUID | None = None) -> Mapping[str, Any]:
    """Take one decision on the ticket's current step (``ticket`` locked by the caller): the one
    path for the API, the customer's link, an e-mail reply and the solve of a task. Refusals are
    Problems with the machine's reason as ``code`` (403 ``not_an_approver``, 409 ``step_finished``
    / ``already_decided`` / ``out_of_turn`` / ``expired`` / ``step_not_current``, 422
    ``wrong_decision_for_kind``, 404 ``no_step``). Returns the step run's new state (``step_view``)."""
    process, row = await _step_to_decide(conn, ticket, step_key)
    if comment is not None:  # the events' bound, whatever path the comment came by
        comment = comment[:events.STEP_COMMENT_MAX_CHARS]
    step = machine_step(row)
    state = machine_state(row)
    who = user_id_of(actor)
    now = datetime.now(UTC)
    result = machine.decide(step, state, actor=who, decision=decision, at=now)
    if isinstance(result, machine.Refused):
        raise refusal(result.reason, step=step_key)
    new = result.state
    extras = _extras(row)
    if comment:
        extras["comments"][who] = comment
    extras["via"][who] = via
    row = await repository.update_step(conn, row["id"], {
        "state": _state_json(new, extras), "waiting_for": waiting_for(step, new),
        "decided_by": [*row["decided_by"], who]})
    DECISIONS.labels(row["kind"], decision).inc()
    await _audit(conn, ticket, actor, "step_decision", {"step": step_key, "step_id": row["id"], "decision": decision,
                                                        "comment": comment, "via": via,
                                                        "step_status": new.outcome.status})
    if row["kind"] in ("approval", "countersign"):
        await _emit(conn, events.TicketApprovalDecided(source=SOURCE, subject=str(ticket["id"]),
                                                       data=events.TicketApprovalDecidedData(
            **changes.ref(ticket, actor), step_id=row["id"], step=row["key"], kind=row["kind"], decision=decision,
            decided_by=who, comment=comment, step_status=new.outcome.status, decided_at=now)))
    if new.outcome.finished:
        await _finish(conn, ticket, process, row, new, actor=actor, via=via, comment=comment, customer_id=customer_id)
        row = await repository.get_step(conn, row["id"])
    elif (isinstance(step, machine.CountersignStep) and step.order == "sequential"
          and machine.next_party(step, new.decisions) != machine.next_party(step, state.decisions)):
        # the next party's turn: they are asked now, not when the step started
        await _emit(conn, _approval_requested(ticket, row, step, actor=actor, at=now, due=row["deadline"]))
    return step_view(row)


async def _finish(conn: Any, ticket: Mapping[str, Any], process: Mapping[str, Any], row: Mapping[str, Any],
                  state: machine.StepState, *, actor: str, via: str, comment: str | None = None,
                  customer_id: uuid.UUID | None = None) -> Any:
    """End a step run with the machine's outcome, then go where ``advance`` says. Returns the ticket."""
    now = state.finished_at or datetime.now(UTC)
    outcome = outcome_name(row["kind"], state)
    extras = _extras(row)
    row = await repository.update_step(conn, row["id"], {
        "status": state.outcome.status, "outcome": outcome, "state": _state_json(state, extras), "waiting_for": [],
        "finished_at": now})
    if via != "timeout" and row["deadline"] is not None:
        await timers.cancel(conn, kind=DEADLINE_TIMER, ticket_id=ticket["id"], ref=str(row["id"]))
    ref = changes.ref(ticket, actor)
    evts: list[Any] = [events.TicketStepCompleted(source=SOURCE, subject=str(ticket["id"]),
                                                  data=events.TicketStepCompletedData(
        **ref, step_id=row["id"], step=row["key"], outcome=outcome, completed_at=now))]
    if row["kind"] == "customer_confirmation":
        evts.append(events.TicketCustomerConfirmed(source=SOURCE, subject=str(ticket["id"]),
                                                   data=events.TicketCustomerConfirmedData(
            **ref, step_id=row["id"], step=row["key"], answer=confirmation_answer(state), via=via[:32],
            customer_id=customer_id, comment=comment, confirmed_at=now)))
    await _emit(conn, *evts)
    if row["started_at"] is not None:
        STEP_DURATION.labels(row["kind"], outcome).observe(max((now - row["started_at"]).total_seconds(), 0.0))
    await _audit(conn, ticket, actor, "step_completed", {"step": row["key"], "step_id": row["id"], "outcome": outcome,
                                                         "via": via})
    return await _advance(conn, ticket, process, row, state.outcome, actor=actor)


async def _advance(conn: Any, ticket: Mapping[str, Any], process: Mapping[str, Any], row: Mapping[str, Any],
                   outcome: machine.Outcome, *, actor: str) -> Any:
    steps = await steps_of_version(conn, process["ticket_type"], process["version"])
    position = row["position"]
    skipped = skipped_keys(steps, ticket)
    nxt = machine.advance(steps, position, outcome, skipped)
    flagged = True if outcome.flagged else None
    now = datetime.now(UTC)
    if isinstance(nxt, machine.Goto):
        if nxt.index > position:
            await _record_skipped(conn, ticket, process, steps, range(position + 1, nxt.index), actor=actor)
        if flagged:
            await repository.set_current_step(conn, process["id"], None, flagged=True)
        if row["kind"] == "customer_confirmation" and ticket["status"] == "solved":
            # the customer said no (or never answered): work again
            ticket = await _change(conn, ticket, {"status": "open"}, actor=actor, action="reopened_by_process")
        await _start_step(conn, ticket, process, steps, nxt.index, actor=actor)
        return ticket
    if isinstance(nxt, machine.Finished):
        await _record_skipped(conn, ticket, process, steps, range(position + 1, len(steps)), actor=actor)
        await repository.end_process(conn, process["id"], state="finished", at=now, flagged=flagged)
        await _audit(conn, ticket, actor, "process_finished", {"process_id": process["id"]})
        return ticket
    if isinstance(nxt, machine.Closed):
        await repository.end_process(conn, process["id"], state="closed", at=now, flagged=flagged)
        await _audit(conn, ticket, actor, "process_closed", {"process_id": process["id"], "reason": nxt.reason,
                                                             "step": row["key"]})
        return await _change(conn, ticket, {"status": "closed"}, actor=actor, action=f"closed_by_process_{nxt.reason}")
    await repository.end_process(conn, process["id"], state="reopened", at=now, flagged=flagged)
    await _audit(conn, ticket, actor, "process_reopened", {"process_id": process["id"], "step": row["key"]})
    return await _change(conn, ticket, {"status": "open"}, actor=actor, action="reopened_by_process")


# --------------------------------------------------------------------------- clock, solving, cancelling


async def on_deadline(conn: Any, timer: Any) -> None:
    """The ``step_deadline`` timer: an approval's expiry or a confirmation's timeout. Runs in the
    transaction that marks the timer fired; the ticket's row lock serialises it with decisions,
    and a step decided meanwhile is left alone."""
    ticket = await tickets_repository.lock_ticket(conn, timer.ticket_id)
    row = await repository.get_step(conn, uuid.UUID(timer.ref))
    if ticket is None or row is None or row["status"] != "active" or row["deadline"] is None:
        return
    step = machine_step(row)
    result = machine.expire(step, machine_state(row), at=max(datetime.now(UTC), row["deadline"]))
    if isinstance(result, machine.Refused):
        return
    process = await repository.running_process(conn, ticket["id"])
    if process is None or process["id"] != row["process_id"]:  # pragma: no cover - cancelled with the process
        return
    await _audit(conn, ticket, CLOCK_ACTOR, "step_decision", {"step": row["key"], "step_id": row["id"],
                                                              "decision": "expire", "via": "timeout",
                                                              "step_status": "expired"})
    await _finish(conn, ticket, process, row, result.state, actor=CLOCK_ACTOR, via="timeout")


async def cancel_process(conn: Any, ticket: Mapping[str, Any], *, actor: str, reason: str) -> bool:
    """Stop the running process (the ticket was closed or merged by hand): its current step ends
    ``cancelled`` (a ``step_completed`` when it had started, so sla-svc stops its timer)."""
    process = await repository.running_process(conn, ticket["id"])
    if process is None:
        return False
    now = datetime.now(UTC)
    if process["current_step_id"] is not None:
        row = await repository.get_step(conn, process["current_step_id"])
        if row is not None and row["status"] in ("active", "pending"):
            started = row["status"] == "active"
            await repository.update_step(conn, row["id"], {"status": "cancelled", "outcome": "cancelled",
                                                           "waiting_for": [], "finished_at": now})
            if started:
                if row["deadline"] is not None:
                    await timers.cancel(conn, kind=DEADLINE_TIMER, ticket_id=ticket["id"], ref=str(row["id"]))
                await _emit(conn, events.TicketStepCompleted(source=SOURCE, subject=str(ticket["id"]),
                                                             data=events.TicketStepCompletedData(
                    **changes.ref(ticket, actor), step_id=row["id"], step=row["key"], outcome="cancelled",
                    completed_at=now)))
                STEP_DURATION.labels(row["kind"], "cancelled").observe(
                    max((now - row["started_at"]).total_seconds(), 0.0))
            await _audit(conn, ticket, actor, "step_completed", {"step": row["key"], "step_id": row["id"],
                                                                 "outcome": "cancelled", "reason": reason})
    await repository.end_process(conn, process["id"], state="cancelled", at=now)
    await _audit(conn, ticket, actor, "process_cancelled", {"process_id": process["id"], "reason": reason})
    return True


async def _on_solved(conn: Any, ticket: Mapping[str, Any], *, actor: str) -> None:
    """Solving completes a task step, and starts a customer confirmation waiting for it."""
    current = await current_step(conn, ticket["id"])
    if current is not None and current["kind"] == "task" and current["status"] == "active":
        await decide(conn, ticket, step_key=current["key"], actor=actor, decision="complete", via="solve")
        current = await current_step(conn, ticket["id"])
    if current is not None and current["kind"] == "customer_confirmation" and current["status"] == "pending":
        process = await repository.running_process(conn, ticket["id"])
        row = await repository.get_step(conn, current["id"])
        await _activate(conn, ticket, process, row, machine_step(row), actor=actor)


async def _on_reopened_by_agent(conn: Any, ticket: Mapping[str, Any], *, actor: str) -> None:
    """An agent reopening a ticket whose resolution the customer was asked to confirm withdraws
    the question: the confirmation ends ``rejected`` on the customer's behalf (``via`` agent) and
    the process goes back to the step before it, as a customer's no would. (A customer's own
    message reopens the ticket too, but its answer is the message's: ``confirmations``.)"""
    current = await current_step(conn, ticket["id"])
    if current is not None and current["kind"] == "customer_confirmation" and current["status"] == "active":
        await decide(conn, ticket, step_key=current["key"], actor=actor, decision="reject", via="agent")


# --------------------------------------------------------------------------- lifecycle hooks


@hooks.after_create
async def _start_on_create(conn: Any, row: Mapping[str, Any], actor: str) -> None:
    """A new ticket of a type with a process starts it. A first step nobody can decide does not
    refuse the ticket (intake must not fail on a process): it is audited and logged instead."""
    if not row["type"] or not await DEFINED.get(conn):
        return
    try:
        async with conn.transaction():  # a savepoint: a refused start leaves nothing half-written
            await start_process(conn, row, actor=actor)
    except Problem as exc:
        log.warning("process for ticket %s not started: %s", row["id"], exc.detail)
        await _audit(conn, row, actor, "process_not_started", {"reason": exc.detail,
                                                               "code": exc.extensions.get("code")})


async def _create_quiet(conn: Any, ticket_type: str | None) -> bool:
    return not ticket_type or not await DEFINED.get(conn)


hooks.quiet_when(_start_on_create, _create_quiet)


@hooks.before_change
async def _refuse_solve_while_pending(conn: Any, before: Mapping[str, Any], values: Mapping[str, Any],
                                      actor: str) -> None:
    """An approval or countersign that has not said yes keeps the ticket from being solved."""
    if values.get("status") != "solved" or _OWN.get() or not await DEFINED.get(conn):
        return
    current = await current_step(conn, before["id"])
    if current is None or current["status"] != "active" or current["kind"] not in ("approval", "countersign"):
        return
    row = await repository.get_step(conn, current["id"])
    waiting = list(row["waiting_for"])
    raise step_problem(409, "step_pending",
                       f"The ticket cannot be solved while step {current['name']!r} ({current['key']}) waits for "
                       f"{', '.join(waiting) or 'its approvers'}.", step=current["key"], waiting_for=waiting)


@hooks.after_change
async def _follow_ticket(conn: Any, before: Mapping[str, Any], row: Mapping[str, Any], audited: Mapping[str, Any],
                         actor: str) -> None:
    """Closing or merging cancels; solving completes a task / starts a confirmation; a new type
    with a process starts it when none runs."""
    if _OWN.get() or not audited.keys() & {"status", "type", "merged_into"} or not await DEFINED.get(conn):
        return
    if row["merged_into"] is not None or row["status"] == "closed":
        await cancel_process(conn, row, actor=actor, reason="merged" if row["merged_into"] is not None else "closed")
        return
    if "status" in audited and row["status"] == "solved":
        await _on_solved(conn, row, actor=actor)
    elif "status" in audited and before["status"] == "solved" and actor.startswith("user:"):
        await _on_reopened_by_agent(conn, row, actor=actor)
    if "type" in audited and row["type"]:
        await start_process(conn, row, actor=actor)


timers.register(DEADLINE_TIMER, on_deadline)
