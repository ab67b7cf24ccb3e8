"""Soft deletion: a deleted ticket is closed and hidden, and kept until it is restored.

Zendesk's agents delete spam and mistakes and restore them from a "deleted tickets" list for 30
days; integrations call ``DELETE /api/v2/tickets/{id}.json``. Here deleting (admins and
supervisors: ``policy.check_delete``) closes the ticket through ``changes.apply`` like a merge
does, past the state machine: its SLA timers and process end (``ticket.status_changed`` to
``closed``), its audit names the deletion, and ``ticket.updated`` carries ``deleted_at`` so
consumers and webhooks see it was a deletion. From then on every read, list, search, view and
write answers as if there were no such ticket (``policy.may_read``, ``repository._list_where``),
and a customer's reply quoting it opens a new ticket. Restoring gives back the status it had
(``status_before_delete``); sla-svc starts a fresh resolution cycle, as for a reopened ticket.
The row and its messages stay in the database: the customer's erasure still finds them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from helpdesk_common.identity import Principal
from helpdesk_common.pagination import decode_cursor, encode_cursor
from helpdesk_common.problems import Problem

from . import changes, policy, repository, service


async def _load(conn: Any, principal: Principal, ticket_id: uuid.UUID) -> Any:
    """The locked ticket, deleted or not, if the caller may delete or restore it."""
    row, viewer = await service.load_with_viewer(conn, principal=principal, ticket_id=ticket_id, lock=True)
    if row is None:
        raise service.not_found(ticket_id)
    refusal = policy.check_delete(viewer, row)
    if refusal is not None:
        raise refusal.problem(ticket_id)
    return row


async def delete(conn: Any, *, principal: Principal, ticket_id: uuid.UUID, if_match: str | None) -> Any:
    row = await _load(conn, principal, ticket_id)
    if row["deleted_at"] is not None:  # already deleted: as absent as it is to every other request
        raise service.not_found(ticket_id)
    service.check_version(row, if_match)
    return await changes.apply(
        conn, row, {"status": "closed", "custom_status_id": None, "deleted_at": datetime.now(UTC),
                    "deleted_by": principal.ref, "status_before_delete": row["status"],
                    # an offer nobody accepted is withdrawn: routing re-offers only live tickets
                    "assignment_state": None if row["assignment_state"] == "offered" else row["assignment_state"]},
        actor=principal.ref, action="deleted", force=True,
    )


async def restore(conn: Any, *, principal: Principal, ticket_id: uuid.UUID) -> Any:
    row = await _load(conn, principal, ticket_id)
    if row["deleted_at"] is None:
        raise Problem(409, "not-deleted", "Ticket not deleted", "Only a deleted ticket can be restored.")
    previous = row["status_before_delete"] or "open"
    return await changes.apply(
        conn, row, {"status": previous, "deleted_at": None, "deleted_by": None, "status_before_delete": None,
                    # the deletion's close is undone: a ticket closed before it keeps its own time
                    "closed_at": row["closed_at"] if previous == "closed" else None},
        actor=principal.ref, action="restored", force=True,
    )


async def list_deleted(conn: Any, *, principal: Principal, limit: int, cursor: str | None,
                       numbers: list[int] | None = None) -> tuple[list[Any], str | None]:
    """The deleted tickets, most recently deleted first (staff only: the ones who delete)."""
    if not policy.viewer_of(principal).is_staff:
        raise policy.DELETE_FORBIDDEN.problem()
    rows = await repository.list_deleted(conn, limit=limit + 1, after=decode_cursor(cursor) if cursor else None,
                                         numbers=numbers)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode_cursor(rows[-1]["deleted_at"], rows[-1]["id"]) if more and rows else None)


def to_deleted_read(row: Any) -> dict[str, Any]:
    """A deleted ticket in the list: what tells it apart, no personal data (Zendesk shows the
    subject and who deleted it)."""
    return {"id": row["id"], "number": row["number"], "subject": row["subject"],
            "previous_status": row["status_before_delete"], "deleted_at": row["deleted_at"],
            "deleted_by": row["deleted_by"], "created_at": row["created_at"]}
