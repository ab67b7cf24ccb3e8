"""Applying a change to a ticket: one update, one audit entry, the right events.

Every path that changes a ticket (PATCH, messages, macros, merge, routing, SLA escalations)
goes through ``apply``, so the audit trail and the event stream can never miss a change.
Events per change: a status change emits ``ticket.status_changed``, an assignment change
``ticket.assigned``, and any other visible field change ``ticket.updated`` — so a status-only
change is exactly one event.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from helpdesk_common import events
from helpdesk_common.outbox import enqueue_raw

from ..db import outbox
from ..pii.codec import cc_of, codec
from . import hooks, repository

SOURCE = "ticket-svc"
#: fields whose change is worth an audit entry and a ticket.updated event
AUDITED = (
    "subject", "status", "custom_status_id", "priority", "type", "tags", "custom_fields", "language", "team_id",
    "assignee_id", "cc", "followers", "merged_into", "customer_id", "customer_tier", "deleted_at",
)
_STATUS_FIELDS = frozenset({"status", "custom_status_id"})
_ASSIGN_FIELDS = frozenset({"assignee_id", "team_id"})


def jsonable(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


def current(row: Mapping[str, Any], name: str) -> Any:
    """A field's value as the service layer knows it (``cc`` is sealed at rest: opened here)."""
    return cc_of(row) if name == "cc" else row[name]


def stored(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` as the row stores them (the CC list sealed)."""
    return {**values, "cc": codec().seal_cc(values["cc"])} if "cc" in values else dict(values)


def diff(before: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: {"before": jsonable(current(before, name)), "after": jsonable(value)}
        for name, value in values.items()
        if name in AUDITED and current(before, name) != value
    }


def ends_care(values: Mapping[str, Any]) -> bool:
    """Does this change end a care ticket's claim on its customer (``care_of``, unique while set)?
    Solving, closing or merging it does; a reopened care ticket does not claim again, so it never
    collides with a newer one and a customer's message on it is never refused."""
    return values.get("status") in ("solved", "closed") or values.get("merged_into") is not None


def ref(row: Mapping[str, Any], actor: str | None) -> dict[str, Any]:
    return {
        "ticket_id": row["id"], "number": row["number"], "status": row["status"], "priority": row["priority"],
        "team_id": row["team_id"], "assignee_id": row["assignee_id"], "actor": actor, "version": row["version"],
    }


async def apply(
    conn: Any,
    before: Mapping[str, Any],
    values: Mapping[str, Any],
    *,
    actor: str,
    action: str = "updated",
    reason: str = "manual",
    custom_status_key: str | None = None,
    search: str | None = None,
    subject_search: str | None = None,
    force: bool = False,
) -> Any:
    """Write ``values`` (only those that differ), audit and emit; returns the new row.

    ``search`` (a ``search.document``) is appended to the search vector; ``subject_search``
    replaces the subject's lexemes (``repository.update_ticket``). ``force`` writes even
    without a visible change (e.g. a message bumps the version).
    """
    values = {k: v for k, v in values.items() if current(before, k) != v}
    if not values and not search and subject_search is None and not force:
        return before
    if before.get("care_of") is not None and ends_care(values):
        values["care_of"] = None  # the customer's next churn episode may open a new care ticket
    if values:
        await hooks.run_before_change(conn, before, values, actor)
    changes = diff(before, values)
    if "updated_by" not in values:
        values["updated_by"] = actor
    now = datetime.now(UTC)
    if "status" in values:
        values.setdefault("status_changed_at", now)
        if values["status"] == "solved":
            values.setdefault("solved_at", now)
        if values["status"] == "closed":
            values.setdefault("closed_at", now)
        if values["status"] == "open" and before["status"] == "solved":
            values.setdefault("solved_at", None)
    row = await repository.update_ticket(conn, before["id"], stored(values), search=search,
                                         subject_search=subject_search)
    hooks.wrote()
    if changes:
        await repository.insert_audit(conn, ticket_id=row["id"], actor=actor, action=action, changes=changes)
    evts: list[Any] = []
    if changes.keys() & _STATUS_FIELDS:
        evts.append(events.TicketStatusChanged(
            source=SOURCE, subject=str(row["id"]),
            data=events.TicketStatusChangedData(
                **ref(row, actor), from_status=before["status"], to_status=row["status"],
                custom_status=custom_status_key, changed_at=now,
                reason=action if action in ("deleted", "restored") else None,
            ),
        ))
    if changes.keys() & _ASSIGN_FIELDS:
        evts.append(events.TicketAssigned(
            source=SOURCE, subject=str(row["id"]),
            data=events.TicketAssignedData(
                **ref(row, actor), previous_assignee_id=before["assignee_id"], previous_team_id=before["team_id"],
                reason=reason, assigned_at=now,
            ),
        ))
    other = {k: v for k, v in changes.items() if k not in _STATUS_FIELDS | _ASSIGN_FIELDS}
    if other:
        evts.append(events.TicketUpdated(
            source=SOURCE, subject=str(row["id"]), data=events.TicketUpdatedData(**ref(row, actor), changes=other),
        ))
    if evts:
        await enqueue_raw(conn, outbox, *evts)
    if changes:
        row = await hooks.run_after_change(conn, before, row, changes, actor)
    return row
