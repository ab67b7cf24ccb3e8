"""Who may read and change which ticket: the one rule, pure, over plain data.

Every read (GET, messages, attachments, audit, links, lists, search, saved views) and every
write (PATCH, macros, merge, links, messages, ticket creation with a team or assignee, the
supervisors' /assign) asks this module; nothing else decides. The rule (docs/security.md,
"Tickets: who may read and change what"):

- **admins and supervisors** read and change every ticket;
- **agents** read and work tickets of their teams, tickets assigned to them and tickets with
  no team (the triage queue). Anything else answers 404 on every path, so an agent cannot even
  learn that another team's ticket exists. On a ticket they may work they change status and
  every other field, but assignment only for themselves: they may take an unassigned ticket
  (assignee = themselves), release their own (assignee = null) and pull a triage ticket into
  one of their own teams. Giving a ticket to someone else, taking it from someone else, and
  moving it out of a team or between teams stay with supervisors (like ``/assign``): that is
  the point of supervisor-only assignment, and a PATCH or a macro must not get round it;
- **channel keys** read and write only tickets they created, and change no field directly
  (their customer messages reopen tickets through the conversation rules).

Why teams and not "all users see all tickets": the live stream already shows an agent only
their teams' and their own tickets (gateway ``stream.service.may_see``); REST showed everything,
so the same agent could read and rewrite any ticket by id. The triage queue is the one place
REST is wider than the stream: without it a desk with no routing rules would show its agents
nothing. Team membership is ticket-svc's own (``team_members``), read fresh with each request
(in the same SQL statement on the hot read paths), so a removal applies at once.

The list filter is this rule written as SQL (``list_scope`` here, ``visible_to_agent`` in
``repository._list_where``); an integration test checks that both agree on every ticket.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from helpdesk_common.identity import Principal
from helpdesk_common.problems import Problem

#: roles that read and change every ticket
STAFF_ROLES = frozenset({"admin", "supervisor"})


@dataclass(frozen=True, slots=True)
class Viewer:
    """The caller as the rule sees it. ``team_ids`` matter for agents only (string uuids)."""

    kind: str  # "user" | "channel"
    id: str
    role: str | None = None
    team_ids: frozenset[str] = frozenset()

    @property
    def ref(self) -> str:
        """The form tickets record their creator in (``created_by``)."""
        return f"{self.kind}:{self.id}"

    @property
    def is_staff(self) -> bool:
        return self.kind == "user" and self.role in STAFF_ROLES

    @property
    def is_agent(self) -> bool:
        """Any user who is not staff, including an unknown or missing role (least privilege)."""
        return self.kind == "user" and self.role not in STAFF_ROLES


def viewer_of(principal: Principal, team_ids: Iterable[Any] = ()) -> Viewer:
    return Viewer(kind=principal.kind, id=principal.id, role=principal.role,
                  team_ids=frozenset(str(t) for t in team_ids))


def needs_teams(principal: Principal) -> bool:
    """Whether the rule needs the caller's teams (agents only: staff and channels never do)."""
    return principal.kind == "user" and principal.role not in STAFF_ROLES


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def may_read(viewer: Viewer, ticket: Mapping[str, Any]) -> bool:
    """``ticket`` needs ``created_by``, ``team_id`` and ``assignee_id``. A soft-deleted ticket
    is nobody's to read or write on these paths (``deleted_at``; a row without the column, such
    as a link's other side, is not deleted): only its restore and the deleted list see it."""
    if ticket.get("deleted_at") is not None:
        return False
    return _may_see(viewer, ticket)


def _may_see(viewer: Viewer, ticket: Mapping[str, Any]) -> bool:
    if viewer.kind == "channel":
        return ticket["created_by"] == viewer.ref
    if viewer.kind != "user":
        return False
    if viewer.is_staff:
        return True
    team = _text(ticket["team_id"])
    return team is None or ticket["assignee_id"] == viewer.id or team in viewer.team_ids


def may_write(viewer: Viewer, ticket: Mapping[str, Any]) -> bool:
    """Whoever may read a ticket may work on it (reply, note, status...); what they may change
    is narrowed per field by ``check_change``. Kept separate so the two can diverge in one place."""
    return may_read(viewer, ticket)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why the rule says no, as the problem the API answers with."""

    status: int
    kind: str
    title: str
    detail: str
    field: str | None = None

    def problem(self, ticket_id: Any = None) -> Problem:
        if self.status == 404:
            return Problem(404, "not-found", "Ticket not found", f"No ticket {ticket_id}.")
        extensions = {"field": self.field} if self.field else {}
        return Problem(self.status, self.kind, self.title, self.detail, **extensions)


NOT_FOUND = Refusal(404, "not-found", "Ticket not found", "No such ticket.")
CHANNEL_CHANGE = Refusal(403, "forbidden", "Forbidden", "Only agents update tickets.")
CHANNEL_ASSIGN = Refusal(403, "forbidden", "Forbidden", "Channels cannot assign tickets.")


def _assignment(detail: str, field: str) -> Refusal:
    return Refusal(403, "assignment-forbidden", "Assignment not allowed", detail, field)


def check_write(viewer: Viewer, ticket: Mapping[str, Any]) -> Refusal | None:
    """May the caller write to the ticket at all (a message, a link, a merge)? 404 if not."""
    return None if may_write(viewer, ticket) else NOT_FOUND


def check_change(viewer: Viewer, ticket: Mapping[str, Any], changes: Mapping[str, Any]) -> Refusal | None:
    """May the caller set these fields (the PATCH body, a macro's actions, a merge...)?

    ``changes`` maps field names to requested values; only ``team_id`` and ``assignee_id`` are
    restricted beyond write access, and only when they actually change.
    """
    if not may_write(viewer, ticket):
        return NOT_FOUND
    if viewer.kind != "user":
        return CHANNEL_CHANGE
    if viewer.is_staff:
        return None
    team_before, assignee_before = _text(ticket["team_id"]), ticket["assignee_id"]
    team_after = _text(changes["team_id"]) if "team_id" in changes else team_before
    assignee_after = changes["assignee_id"] if "assignee_id" in changes else assignee_before
    if team_after != team_before:
        if team_before is not None:
            return _assignment("Only supervisors and admins move a ticket out of its team.", "team_id")
        if team_after not in viewer.team_ids:
            return _assignment("A ticket from the triage queue may go to one of your own teams only.", "team_id")
    if assignee_after != assignee_before:
        if assignee_after == viewer.id:
            if assignee_before is not None:
                return _assignment("The ticket is assigned to someone else; a supervisor reassigns it.",
                                   "assignee_id")
            if team_after is not None and team_after not in viewer.team_ids:
                return _assignment("You may take tickets of your own teams only.", "assignee_id")
        elif assignee_after is None:
            if assignee_before != viewer.id:
                return _assignment("You may release only tickets assigned to you.", "assignee_id")
        else:
            return _assignment("Only supervisors and admins assign tickets to someone else.", "assignee_id")
    return None


def check_create(viewer: Viewer, *, team_id: Any, assignee_id: str | None) -> Refusal | None:
    """A new ticket with an explicit team or assignee: the same rule as taking a triage ticket."""
    if team_id is None and assignee_id is None:
        return None
    if viewer.kind != "user":
        return CHANNEL_ASSIGN
    triage = {"created_by": viewer.ref, "team_id": None, "assignee_id": None}
    return check_change(viewer, triage, {"team_id": team_id, "assignee_id": assignee_id})


DELETE_FORBIDDEN = Refusal(403, "forbidden", "Forbidden", "Only admins and supervisors delete and restore tickets.")


def check_delete(viewer: Viewer, ticket: Mapping[str, Any]) -> Refusal | None:
    """Deleting (and restoring) a ticket: admins and supervisors, as Zendesk's default roles; an
    agent who may read the ticket learns 403, one who may not 404 (as for every other write)."""
    if not _may_see(viewer, ticket):
        return NOT_FOUND
    if viewer.is_staff:
        return None
    # a deleted ticket is absent to everyone else: the same 404 as an id that names nothing
    return NOT_FOUND if ticket.get("deleted_at") is not None else DELETE_FORBIDDEN


def check_merge(viewer: Viewer, source: Mapping[str, Any], target: Mapping[str, Any]) -> Refusal | None:
    """Merging writes both tickets (closes the source, moves its messages to the target)."""
    return check_change(viewer, source, {"status": "closed"}) or check_change(viewer, target, {})


def list_scope(principal: Principal) -> dict[str, Any]:
    """List filters that restrict a list or search to what ``may_read`` allows (as SQL:
    ``created_by`` for channels; ``visible_to_agent`` — team null, assigned to the agent, or
    one of the agent's teams by a subquery on ``team_members`` — for agents; none for staff)."""
    if principal.kind != "user":
        return {"created_by": principal.ref}
    if principal.role in STAFF_ROLES:
        return {}
    return {"visible_to_agent": principal.id}
