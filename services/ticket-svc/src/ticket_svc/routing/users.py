"""The gateway's users in ticket-svc: a projection kept from ``users.events`` (and from the
gateway's synchronous ``PUT /internal/users/{id}``, which runs the same handler), and what a
user's life means for their agent profile.

- The projection (``user_projection``) keeps each user's name, role, state and ``version``; an
  event whose version is not newer than the stored one changes nothing, so a replay, the event
  that follows the synchronous call, and an older event arriving late are all no-ops.
- Agent profiles are only for users: ``PUT /v1/agents/{id}``, listings, team membership and
  routing look through the projection.
- A user (created, or first heard of) gets an agent profile if they have none: their name (or
  ``user <id prefix>`` without one), offline, default capacity, no skills, no teams. A rename
  renames the profile; other changes leave what admins set on the profile alone.
- An ``editor`` (the knowledge base's writers: no ticket rights anywhere) gets no profile; a user
  who becomes one is taken out of routing like a deactivated user (below), profile kept.
- A deactivated user is taken out of routing: offline, never picked by a team's strategy (the
  routing lock joins active users), refused as an assignee and skipped when a rule names them;
  each of their open tickets (not solved or closed) goes back to its team and to the next
  available agent there (or waits in the team's queue, or in triage without a team), as a
  ``ticket.assigned`` by ``system:users``. Their solved tickets keep them as assignee (history),
  and their teams and settings are kept, so a re-activated user comes back offline with them.
"""

from __future__ import annotations

from typing import Any

from helpdesk_common.identity import AGENT_ROLES

from ..tickets import repository as tickets
from . import repository
from .service import assign, pick_in_team

ACTOR = "system:users"
#: ``ticket.assigned`` reason when a deactivation hands a ticket on
REASON_DEACTIVATED = "agent_deactivated"


def profile_name(display_name: str | None, user_id: str) -> str:
    from helpdesk_common.text import one_line

    name = one_line(display_name or "")[:128]
    return name or f"user {user_id[:8]}"


async def apply_user(conn: Any, *, user_id: str, display_name: str | None, role: str, active: bool,
                     version: int) -> bool:
    """Apply one user event's state; False when it is not newer than what is stored (no effect)."""
    before = await repository.lock_user(conn, user_id)
    if before is not None and before["version"] >= version:
        return False
    if not await repository.store_user(conn, user_id=user_id, display_name=display_name, role=role, active=active,
                                       version=version):
        return False  # a concurrent newer version won the row
    name = profile_name(display_name, user_id)
    works_tickets = role in AGENT_ROLES
    created = works_tickets and await repository.insert_agent_of_user(conn, agent_id=user_id, display_name=name)
    if not created and before is not None and before["display_name"] != display_name:
        await repository.rename_agent(conn, agent_id=user_id, display_name=name)
    if not active or not works_tickets:
        await repository.take_agent_offline(conn, user_id)
        await hand_on_open_tickets(conn, user_id)
    return True


async def hand_on_open_tickets(conn: Any, agent_id: str) -> int:
    """A deactivated agent's open tickets back to their team's next available agent (or queue)."""
    moved = 0
    for ticket_id in await repository.open_tickets_assigned_to(conn, agent_id):
        row = await tickets.lock_ticket(conn, ticket_id)
        if row is None or row["assignee_id"] != agent_id or row["status"] in ("solved", "closed"):
            continue
        team = await repository.get_team(conn, row["team_id"]) if row["team_id"] is not None else None
        picked = None
        if team is not None:
            picked = await pick_in_team(conn, team, channel=row["channel"] or "api", exclude=[agent_id])
        await assign(conn, row, team_id=row["team_id"], assignee_id=picked, reason=REASON_DEACTIVATED, actor=ACTOR,
                     offered=picked is not None and team["accept_timeout_s"] is not None)
        moved += 1
    return moved
