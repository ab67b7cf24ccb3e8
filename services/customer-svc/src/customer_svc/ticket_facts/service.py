"""Keeping ``customer_tickets`` true to ticket-svc's tickets, and noting on the customer's
timeline what happened to them.

**Order.** ticket-svc keys its events by ticket, so one ticket's events arrive in order on
tickets.events; nothing orders them against sla.events, against customer-svc's own requester
resolution, or against a DLQ record replayed later. So every event of a ticket not seen yet
inserts a *placeholder* row (status ``new``, created when the event happened, no subject) and
applies its effect; ``ticket.created``, whenever it comes, fills what is still unknown and sets
the creation time. Counters and times (breaches, reopenings, first response, last messages)
commute: a count moves by one per event (the inbox makes each event count once) and times keep
the earliest or the latest. State (status, priority, team, assignee, subject, type, tags) is
only written by an event whose ticket ``version`` is not older than the one applied, so a stale
event replayed late cannot move a ticket back. A placeholder belongs to no customer, so it counts
for nobody until the ticket's customer is known.

Service functions run in the consumer's transaction and never commit.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from helpdesk_common import events

from ..scoring import repository as scoring
from ..timeline import repository as timeline
from . import repository

log = logging.getLogger(__name__)

#: where agent work is still owed (ticket-svc's ``lifecycle.ACTIVE``)
ACTIVE = frozenset({"new", "open", "pending", "on_hold"})
DONE = frozenset({"solved", "closed"})
#: tickets the system opens about a customer rather than requests from them (care, follow-up):
#: shown on the timeline and in the 360 lists, not counted as the customer's contacts
TASK_TYPES = ("care", "follow_up")
#: the longest subject a timeline summary carries (the ticket has the rest)
SUMMARY_SUBJECT_CHARS = 200
#: fields of ``ticket.updated`` changes the projection keeps, with the type their value must have
_UPDATED_FIELDS: dict[str, type] = {"subject": str, "type": str, "priority": str, "tags": list}


# --- pure rules -----------------------------------------------------------------------------------


def is_fresh(stored: int | None, incoming: int | None) -> bool:
    """Whether an event may set the ticket's state: it is not older than what was applied (an
    event or a row without a version cannot be compared, and is taken)."""
    return incoming is None or stored is None or incoming >= stored


def bumped(stored: int | None, incoming: int | None) -> int:
    """The version after a stateful event: never None afterwards, so ``ticket.created`` arriving
    late knows that a later status was already applied."""
    return max(stored or 0, incoming or 0)


def created_values(row: Mapping[str, Any], data: events.TicketCreatedData, *, inserted: bool) -> dict[str, Any]:
    """What ``ticket.created`` writes: everything on a new row; on a row later events made first,
    only what they left unknown (they are newer), plus the creation time, and the status while no
    stateful event was applied."""
    given: dict[str, Any] = {
        "customer_id": data.customer_id, "number": data.number, "subject": data.subject, "status": data.status,
        "priority": data.priority, "type": data.type, "channel": data.channel, "tags": list(data.tags),
        "team_id": data.team_id, "assignee_id": data.assignee_id, "language": data.language,
        "created_at": data.created_at,
    }
    if inserted:
        return given
    out = {name: value for name, value in given.items()
           if name not in ("status", "tags", "created_at") and row[name] is None and value is not None}
    out["created_at"] = data.created_at
    if row["version"] is None:
        out["status"] = data.status
    if not row["tags"] and data.tags:
        out["tags"] = list(data.tags)
    return out


def status_values(row: Mapping[str, Any], *, from_status: str, to_status: str, at: datetime,
                  version: int | None, reason: str | None = None) -> tuple[dict[str, Any], str | None]:
    """The columns a status change sets and the timeline kind it makes (solved, closed, reopened:
    from solved or closed back to where work is owed; deleted and restored for a soft deletion
    and its restore, which are neither a closing nor a reopening), or None."""
    reopened = from_status in DONE and to_status in ACTIVE and reason != "restored"
    values: dict[str, Any] = {"version": bumped(row["version"], version)}
    if reopened:
        values["reopened"] = row["reopened"] + 1
    if reason is not None and is_fresh(row["version"], version):
        values["deleted_at"] = at if reason == "deleted" else None
        values["status"] = to_status
        return values, f"ticket.{reason}"
    if is_fresh(row["version"], version):
        values["status"] = to_status
        if to_status == "solved":
            values["solved_at"] = at
        elif to_status == "closed":
            values["closed_at"] = at
        elif reopened:
            values["solved_at"] = values["closed_at"] = None
    kind = "ticket.reopened" if reopened else {"solved": "ticket.solved", "closed": "ticket.closed"}.get(to_status)
    return values, kind


def message_values(row: Mapping[str, Any], *, author_kind: str, public: bool, channel: str | None,
                   at: datetime, responds: bool) -> dict[str, Any]:
    """Last message, first response (the earliest public agent reply ticket-svc flags as a
    response, as its SLA and analytics count it: not an agent's opening message), last customer
    message and its channel (the latest; the ticket's channel when the message names none)."""
    values: dict[str, Any] = {}
    if row["last_message_at"] is None or at > row["last_message_at"]:
        values["last_message_at"] = at
    if (author_kind == "agent" and public and responds
            and (row["first_response_at"] is None or at < row["first_response_at"])):
        values["first_response_at"] = at
    if author_kind == "customer" and (row["last_customer_message_at"] is None or at >= row["last_customer_message_at"]):
        values["last_customer_message_at"] = at
        values["last_customer_channel"] = channel or row["channel"]
    return values


def message_kind(author_kind: str, public: bool) -> str | None:
    """Customer messages and public agent replies go on the timeline; notes and system messages not."""
    if author_kind == "customer":
        return "message.customer"
    if author_kind == "agent" and public:
        return "message.agent"
    return None


def breach_values(row: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    return {"breaches": row["breaches"] + 1,
            "first_breached_at": min(at, row["first_breached_at"] or at),
            "last_breached_at": max(at, row["last_breached_at"] or at)}


def updated_values(row: Mapping[str, Any], data: events.TicketUpdatedData) -> dict[str, Any]:
    """Subject, type, tags and priority from a ``ticket.updated``'s changes (a value of the wrong
    type is ignored rather than stored)."""
    values: dict[str, Any] = {"version": bumped(row["version"], data.version)}
    if not is_fresh(row["version"], data.version):
        return values
    for name, kind in _UPDATED_FIELDS.items():
        change = data.changes.get(name)
        if not isinstance(change, dict) or "after" not in change:
            continue
        after = change["after"]
        if after is None and name == "type":
            values[name] = None
        elif isinstance(after, kind) and (kind is not list or all(isinstance(t, str) for t in after)):
            values[name] = after
    return values


def assigned_values(row: Mapping[str, Any], data: events.TicketAssignedData) -> dict[str, Any]:
    values: dict[str, Any] = {"version": bumped(row["version"], data.version)}
    if is_fresh(row["version"], data.version):
        values["team_id"] = data.team_id
        values["assignee_id"] = data.assignee_id
    return values


def creation_kind(ticket_type: str | None) -> str:
    return "care_task.created" if ticket_type == "care" else "ticket.created"


def ticket_summary(row: Mapping[str, Any]) -> dict[str, Any]:
    """What a timeline entry about a ticket shows: its number, subject (bounded), status, channel
    and type; never a message body."""
    subject = row["subject"]
    return {"ticket_id": str(row["ticket_id"]), "number": row["number"],
            "subject": subject[:SUMMARY_SUBJECT_CHARS] if subject else subject, "status": row["status"],
            "channel": row["channel"], "type": row["type"]}


# --- effects --------------------------------------------------------------------------------------


async def _apply(conn: Any, row: Any, values: dict[str, Any]) -> Any:
    changed = {name: value for name, value in values.items() if row[name] != value}
    return await repository.update(conn, row["ticket_id"], changed) if changed else row


async def _note_creation(conn: Any, row: Any) -> None:
    """The ticket's creation on its customer's timeline, once both are known (whichever event
    brings the second). The entry's id is the ticket's: re-linking or a merge that moved the
    entry finds it there and writes no second one."""
    if row["customer_id"] is None or row["subject"] is None:
        return
    kind = creation_kind(row["type"])
    await timeline.record(conn, entry=timeline.entry_id(row["ticket_id"], kind), customer_id=row["customer_id"],
                          at=row["created_at"], kind=kind, ref_id=row["ticket_id"], summary=ticket_summary(row))
    await scoring.mark_dirty(conn, row["customer_id"])


async def ticket_created(conn: Any, data: events.TicketCreatedData, *, resolved: uuid.UUID | None = None,
                         announce: Sequence[Any] = (), new_customer: Any = None) -> list[Any] | None:
    """Project ``ticket.created``. ``resolved``: the customer requester resolution found for it
    in this transaction (customers/handlers.py), the ticket's unless the event names one
    (ticket-svc's link wins), as ``customer_resolved`` would link it afterwards. ``announce``:
    that resolution's events, written to the outbox by the projection's statement;
    ``new_customer``: the customer it made (``customers.repository.NewCustomer``), written by that
    statement too. Returns the identities that statement inserted for it (None without one)."""
    values = created_values({}, data, inserted=True)
    if values["customer_id"] is None and resolved is not None:
        values["customer_id"] = resolved
    # first sight of the ticket (the usual case): the whole row, its customer included, and the
    # creation's timeline entry and dirty mark (as _note_creation writes them), in one statement
    kind = creation_kind(values["type"])
    creation = (timeline.entry_id(data.ticket_id, kind), kind, ticket_summary({**values, "ticket_id": data.ticket_id}))
    added = None
    row = await repository.insert_new(conn, data.ticket_id, values, creation=creation, announce=announce,
                                      new_customer=new_customer)
    if new_customer is not None:
        row, added = row
        if len(added) != len(new_customer.identities):
            return added  # one was claimed meanwhile: the caller rolls the transaction back
    if row is None:  # later events came first: merge into what they made, then link
        row, inserted = await repository.lock_or_placeholder(conn, data.ticket_id, at=data.created_at)
        row = await _apply(conn, row, created_values(row, data, inserted=inserted))
        await _note_creation(conn, row)
        if resolved is not None:
            await customer_resolved(conn, ticket_id=data.ticket_id, customer_id=resolved)
    return added


async def customer_resolved(conn: Any, *, ticket_id: uuid.UUID, customer_id: uuid.UUID) -> None:
    """customer-svc resolved the ticket's requester (in the transaction of ``ticket.created``,
    for a row later events made before it: ``ticket_created``): the ticket is that customer's unless it
    already names one (ticket-svc's link wins). Without a projected ticket (a resolution outside
    the consumer) nothing is made up: a placeholder here would be an open ticket nobody has."""
    row = await repository.link_if_unknown(conn, ticket_id, customer_id)
    if row is not None:
        await _note_creation(conn, row)


async def customer_linked(conn: Any, data: events.TicketCustomerLinkedData, *, at: datetime) -> None:
    """ticket-svc (re)linked the ticket to a customer: it owns the ticket, so its link wins. Both
    customers' ticket facts changed."""
    row, _ = await repository.lock_or_placeholder(conn, data.ticket_id, at=at)
    previous = row["customer_id"]
    if previous == data.customer_id:
        return
    row = await repository.update(conn, data.ticket_id, {"customer_id": data.customer_id})
    if previous is not None:
        await scoring.mark_dirty(conn, previous)
    await _note_creation(conn, row)
    await scoring.mark_dirty(conn, data.customer_id)


async def status_changed(conn: Any, event: events.TicketStatusChanged) -> None:
    data = event.data
    row, _ = await repository.lock_or_placeholder(conn, data.ticket_id, at=data.changed_at)
    values, kind = status_values(row, from_status=data.from_status, to_status=data.to_status, at=data.changed_at,
                                 version=data.version, reason=data.reason)
    if row["number"] is None and data.number is not None:
        values["number"] = data.number
    row = await _apply(conn, row, values)
    customer_id = row["customer_id"]
    if customer_id is None:
        log.info("status of a ticket without a known customer: projected, no timeline entry",
                 extra={"ticket_id": str(data.ticket_id)})
        return
    if kind is not None:
        await timeline.record(conn, entry=timeline.entry_id(event.id, kind), customer_id=customer_id,
                              at=data.changed_at, kind=kind, ref_id=data.ticket_id,
                              summary={**ticket_summary(row), "from": data.from_status, "to": data.to_status})
    await scoring.mark_dirty(conn, customer_id)


async def message_added(conn: Any, data: events.TicketMessageAddedData) -> None:
    row, _ = await repository.lock_or_placeholder(conn, data.ticket_id, at=data.created_at)
    row = await _apply(conn, row, message_values(row, author_kind=data.author_kind, public=data.public,
                                                 channel=data.channel, at=data.created_at,
                                                 responds=data.first_response or data.response))
    kind = message_kind(data.author_kind, data.public)
    if kind is None or row["customer_id"] is None:
        return
    await timeline.record(conn, entry=timeline.entry_id(data.message_id, kind), customer_id=row["customer_id"],
                          at=data.created_at, kind=kind, ref_id=data.ticket_id,
                          summary={"ticket_id": str(data.ticket_id), "number": row["number"] or data.number,
                                   "message_id": str(data.message_id), "author_kind": data.author_kind,
                                   "channel": data.channel or row["channel"]})


async def updated(conn: Any, data: events.TicketUpdatedData, *, at: datetime) -> None:
    row, _ = await repository.lock_or_placeholder(conn, data.ticket_id, at=at)
    before = (row["type"], list(row["tags"]))
    row = await _apply(conn, row, updated_values(row, data))
    if row["customer_id"] is not None and (row["type"], list(row["tags"])) != before:
        await scoring.mark_dirty(conn, row["customer_id"])  # repeated contacts compare types and tags


async def assigned(conn: Any, data: events.TicketAssignedData) -> None:
    row, _ = await repository.lock_or_placeholder(conn, data.ticket_id, at=data.assigned_at)
    await _apply(conn, row, assigned_values(row, data))


async def merged(conn: Any, data: events.TicketMergedData, *, at: datetime) -> None:
    """A ticket merged into another no longer counts as open (the partial index leaves it out)."""
    row, _ = await repository.lock_or_placeholder(conn, data.ticket_id, at=at)
    row = await _apply(conn, row, {"merged_into": data.target_ticket_id, "version": bumped(row["version"], data.version)})
    if row["customer_id"] is not None:
        await scoring.mark_dirty(conn, row["customer_id"])


async def sla_breached(conn: Any, data: events.SlaAlertData, *, at: datetime) -> None:
    """One breach per ``sla.breached`` (one per metric that was late), at its due time."""
    when = data.fire_at or data.due_at or at
    row, _ = await repository.lock_or_placeholder(conn, data.ticket_id, at=when)
    row = await _apply(conn, row, breach_values(row, when))
    if row["customer_id"] is not None:
        await scoring.mark_dirty(conn, row["customer_id"])
