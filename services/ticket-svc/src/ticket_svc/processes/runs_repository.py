"""All SQL of running processes: ``ticket_processes`` (one row per process a ticket ran) and
``ticket_steps`` (one row per run of a step). The caller holds the ticket's row lock, which is
what serialises every write here for one ticket.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

_PROCESS = ("id, ticket_id, ticket_type, version, state, flagged, current_step_id, started_by, started_at, "
            "finished_at")
_STEP = ("id, process_id, ticket_id, position, key, kind, name, status, outcome, approvers, parties, settings, state, "
         "waiting_for, decided_by, target_minutes, deadline, created_at, started_at, finished_at")


async def any_definition(conn: Any) -> bool:
    """Whether any ticket type ever had a process (none: no ticket can be running one)."""
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM process_definitions)"))


async def running_process(conn: Any, ticket_id: uuid.UUID) -> Any:
    return await conn.fetchrow(
        f"SELECT {_PROCESS} FROM ticket_processes WHERE ticket_id = $1 AND state = 'running'", ticket_id)


async def latest_process(conn: Any, ticket_id: uuid.UUID) -> Any:
    """The ticket's newest process, running or not (None: it never ran one)."""
    return await conn.fetchrow(
        f"SELECT {_PROCESS} FROM ticket_processes WHERE ticket_id = $1 ORDER BY started_at DESC, id LIMIT 1", ticket_id)


async def insert_process(conn: Any, *, process_id: uuid.UUID, ticket_id: uuid.UUID, ticket_type: str, version: int,
                         started_by: str, started_at: datetime) -> Any:
    """The new running process, or None when one already runs on the ticket (unique index)."""
    return await conn.fetchrow(
        "INSERT INTO ticket_processes (id, ticket_id, ticket_type, version, state, started_by, started_at) "
        "VALUES ($1, $2, $3, $4, 'running', $5, $6) ON CONFLICT (ticket_id) WHERE state = 'running' DO NOTHING "
        f"RETURNING {_PROCESS}",
        process_id, ticket_id, ticket_type, version, started_by, started_at)


async def set_current_step(conn: Any, process_id: uuid.UUID, step_id: uuid.UUID | None, *,
                           flagged: bool | None = None) -> None:
    await conn.execute(
        "UPDATE ticket_processes SET current_step_id = $2, flagged = coalesce($3, flagged) WHERE id = $1",
        process_id, step_id, flagged)


async def end_process(conn: Any, process_id: uuid.UUID, *, state: str, at: datetime, flagged: bool | None = None) -> None:
    await conn.execute(
        "UPDATE ticket_processes SET state = $2, finished_at = $3, current_step_id = NULL, "
        "flagged = coalesce($4, flagged) WHERE id = $1",
        process_id, state, at, flagged)


async def insert_step(conn: Any, v: dict[str, Any]) -> Any:
    return await conn.fetchrow(
        "INSERT INTO ticket_steps (id, process_id, ticket_id, position, key, kind, name, status, outcome, approvers, "
        "parties, settings, state, waiting_for, target_minutes, deadline, started_at, finished_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) "
        f"RETURNING {_STEP}",
        v["id"], v["process_id"], v["ticket_id"], v["position"], v["key"], v["kind"], v["name"], v["status"],
        v.get("outcome"), list(v.get("approvers", ())), v.get("parties", []), v["settings"], v.get("state"),
        list(v.get("waiting_for", ())), v.get("target_minutes"), v.get("deadline"), v.get("started_at"),
        v.get("finished_at"))


_UPDATABLE = frozenset({"status", "outcome", "approvers", "parties", "state", "waiting_for", "decided_by", "deadline",
                        "started_at", "finished_at"})


async def update_step(conn: Any, step_id: uuid.UUID, values: dict[str, Any]) -> Any:
    unknown = set(values) - _UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    names = list(values)
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=2))
    return await conn.fetchrow(f"UPDATE ticket_steps SET {sets} WHERE id = $1 RETURNING {_STEP}",
                               step_id, *(values[n] for n in names))


async def get_step(conn: Any, step_id: uuid.UUID) -> Any:
    return await conn.fetchrow(f"SELECT {_STEP} FROM ticket_steps WHERE id = $1", step_id)


async def latest_step_with_key(conn: Any, process_id: uuid.UUID, key: str) -> Any:
    return await conn.fetchrow(
        f"SELECT {_STEP} FROM ticket_steps WHERE process_id = $1 AND key = $2 ORDER BY created_at DESC, id LIMIT 1",
        process_id, key)


async def steps_of(conn: Any, process_id: uuid.UUID) -> list[Any]:
    """Every run of every step of the process, in the order they were reached."""
    return list(await conn.fetch(
        f"SELECT {_STEP} FROM ticket_steps WHERE process_id = $1 ORDER BY created_at, position, id", process_id))


async def is_party_to(conn: Any, process_id: uuid.UUID, user_id: str) -> bool:
    """Whether ``user_id`` is an approver or a signer of any step of the process (they may read
    and decide it even when the ticket's team is not theirs)."""
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM ticket_steps WHERE process_id = $1 "
        "AND ($2 = ANY(approvers) OR parties @> jsonb_build_array(jsonb_build_array($2::text))))",
        process_id, user_id))


async def active_team_members(conn: Any, team_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    """Each team's members who are active users, by team."""
    found: dict[uuid.UUID, list[str]] = {team: [] for team in team_ids}
    if not team_ids:
        return found
    rows = await conn.fetch(
        "SELECT m.team_id, m.agent_id FROM team_members m JOIN user_projection u ON u.id = m.agent_id AND u.active "
        "WHERE m.team_id = ANY($1::uuid[]) ORDER BY m.agent_id", list(team_ids))
    for row in rows:
        found[row["team_id"]].append(row["agent_id"])
    return found


async def active_role_holders(conn: Any, roles: Sequence[str]) -> dict[str, list[str]]:
    """The active users holding each role, by role."""
    found: dict[str, list[str]] = {role: [] for role in roles}
    if not roles:
        return found
    rows = await conn.fetch(
        "SELECT role, id FROM user_projection WHERE active AND role = ANY($1::text[]) ORDER BY id", list(roles))
    for row in rows:
        found[row["role"]].append(row["id"])
    return found


async def queue(conn: Any, *, user_id: str, decided: bool, after: tuple[datetime, uuid.UUID] | None,
                limit: int) -> list[Any]:
    """The steps waiting for ``user_id`` (active, in ``waiting_for``: only approvals and
    countersigns have anyone there), or the approvals and countersigns they decided, newest
    first, keyset-paginated on (created_at, id). A soft-deleted ticket's steps are in neither
    list (its process answers 404 to everyone until it is restored)."""
    # ``@>`` (not ``= ANY``) so the GIN indexes on the arrays answer it
    where = ("s.decided_by @> ARRAY[$1::text] AND s.kind IN ('approval', 'countersign')" if decided
             else "s.status = 'active' AND s.waiting_for @> ARRAY[$1::text]")
    return list(await conn.fetch(
        f"SELECT s.id, s.process_id, s.ticket_id, s.position, s.key, s.kind, s.name, s.status, s.outcome, s.approvers, "
        "s.parties, s.settings, s.state, s.waiting_for, s.decided_by, s.target_minutes, s.deadline, s.created_at, "
        "s.started_at, s.finished_at, t.number, t.subject, t.status AS ticket_status, t.priority, p.version "
        "FROM ticket_steps s JOIN tickets t ON t.id = s.ticket_id JOIN ticket_processes p ON p.id = s.process_id "
        f"WHERE {where} AND t.deleted_at IS NULL AND ($2::timestamptz IS NULL OR (s.created_at, s.id) < ($2, $3::uuid)) "
        "ORDER BY s.created_at DESC, s.id DESC LIMIT $4",
        user_id, after[0] if after else None, after[1] if after else None, limit))


async def current_summary(conn: Any, ticket_id: uuid.UUID) -> Any:
    """The running process's current step (key, kind, status) and version, or None."""
    return await conn.fetchrow(
        "SELECT p.version, p.flagged, s.key, s.kind, s.status FROM ticket_processes p "
        "LEFT JOIN ticket_steps s ON s.id = p.current_step_id WHERE p.ticket_id = $1 AND p.state = 'running'",
        ticket_id)
