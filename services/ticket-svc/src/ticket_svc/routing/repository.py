"""All SQL of routing: agents, teams, memberships, rules, loads."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

_AGENT = "id, display_name, email, status, capacity, skills, last_assigned_seq, created_at, updated_at"
_TEAM = "id, name, strategy, accept_timeout_s, required_skills, version, created_at, updated_at"
#: the team columns a write may set (names never come from requests)
TEAM_FIELDS = ("name", "strategy", "accept_timeout_s", "required_skills")


async def upsert_agent(conn: Any, *, agent_id: str, values: dict[str, Any]) -> Any:
    return await conn.fetchrow(
        "INSERT INTO agents (id, display_name, email, status, capacity, skills) VALUES ($1, $2, $3, $4, $5, $6) "
        "ON CONFLICT (id) DO UPDATE SET display_name = EXCLUDED.display_name, email = EXCLUDED.email, "
        "status = EXCLUDED.status, capacity = EXCLUDED.capacity, skills = EXCLUDED.skills, updated_at = now() "
        f"RETURNING {_AGENT}",
        agent_id, values["display_name"], values.get("email"), values["status"], values["capacity"], values["skills"],
    )


async def set_agent_status(conn: Any, *, agent_id: str, status: str) -> Any:
    return await conn.fetchrow(
        f"UPDATE agents SET status = $2, updated_at = now() WHERE id = $1 RETURNING {_AGENT}", agent_id, status
    )


#: agent profiles of users (the gateway's, projected from users.events) with the user's state;
#: a profile whose id is no user (made before users were projected) is not one of them
_AGENT_OF_USER = ", ".join("a." + c.strip() for c in _AGENT.split(",")) + ", u.active"
_AGENTS_OF_USERS = "agents a JOIN user_projection u ON u.id = a.id"


async def get_agent(conn: Any, agent_id: str) -> Any:
    """The profile with ``active``, or None (no profile, or the id is no user)."""
    return await conn.fetchrow(f"SELECT {_AGENT_OF_USER} FROM {_AGENTS_OF_USERS} WHERE a.id = $1", agent_id)


async def list_agents(conn: Any) -> list[Any]:
    return await conn.fetch(f"SELECT {_AGENT_OF_USER} FROM {_AGENTS_OF_USERS} ORDER BY a.display_name, a.id LIMIT 1000")


async def team_ids_of(conn: Any, agent_id: str) -> list[uuid.UUID]:
    return [r[0] for r in await conn.fetch("SELECT team_id FROM team_members WHERE agent_id = $1", agent_id)]


async def insert_team(conn: Any, values: dict[str, Any]) -> Any:
    return await conn.fetchrow(
        "INSERT INTO teams (id, name, strategy, accept_timeout_s, required_skills) VALUES ($1, $2, $3, $4, $5) "
        f"ON CONFLICT (name) DO NOTHING RETURNING {_TEAM}",
        values["id"], values["name"], values["strategy"], values.get("accept_timeout_s"), values["required_skills"],
    )


class NameTaken(Exception):
    """Another team already has the name (``teams.name`` is unique)."""


async def update_team(conn: Any, team_id: uuid.UUID, values: dict[str, Any]) -> Any:
    """Set the ``TEAM_FIELDS`` in ``values`` (the others stay) and move the version on; the
    updated row, or None when there is no such team; NameTaken when renamed onto another team's
    name. The constraint decides (no read-then-write race); the transaction is aborted then, so
    the caller answers without further statements."""
    names = [n for n in TEAM_FIELDS if n in values]
    sets = [f"{name} = ${i + 2}" for i, name in enumerate(names)]
    try:
        return await conn.fetchrow(
            f"UPDATE teams SET {', '.join([*sets, 'version = version + 1', 'updated_at = now()'])} "
            f"WHERE id = $1 RETURNING {_TEAM}",
            team_id, *(values[n] for n in names),
        )
    except asyncpg.UniqueViolationError as exc:
        raise NameTaken(values.get("name")) from exc


async def get_team(conn: Any, team_id: uuid.UUID, *, key_share: bool = False) -> Any:
    """The team; ``key_share`` keeps it from being deleted until the transaction ends (a ticket
    is being put into it: see ``team_exists_shared``)."""
    return await conn.fetchrow(f"SELECT {_TEAM} FROM teams WHERE id = $1" + (" FOR KEY SHARE" if key_share else ""),
                               team_id)


async def lock_team(conn: Any, team_id: uuid.UUID) -> Any:
    """The team, locked for a write (its version is compared under this lock)."""
    return await conn.fetchrow(f"SELECT {_TEAM} FROM teams WHERE id = $1 FOR UPDATE", team_id)


async def team_exists_shared(conn: Any, team_id: uuid.UUID) -> bool:
    """Does the team exist? The row stays key-share locked until the transaction ends, so a
    concurrent delete waits for the ticket that names it and then sees that ticket."""
    return bool(await conn.fetchval("SELECT true FROM teams WHERE id = $1 FOR KEY SHARE", team_id))


async def team_usage(conn: Any, team_id: uuid.UUID) -> tuple[int, list[uuid.UUID]]:
    """(tickets of the team that are not closed, ids of routing rules that set it)."""
    open_tickets = await conn.fetchval(
        "SELECT count(*) FROM tickets WHERE team_id = $1 AND status <> 'closed'", team_id)
    rules = await conn.fetch(
        "SELECT id FROM routing_rules WHERE definition -> 'actions' ->> 'set_team' = $1 ORDER BY position, id",
        str(team_id))
    return int(open_tickets), [r[0] for r in rules]


async def delete_team(conn: Any, team_id: uuid.UUID) -> None:
    """Delete the team; its memberships go with it (ON DELETE CASCADE)."""
    await conn.execute("DELETE FROM teams WHERE id = $1", team_id)


async def list_teams(conn: Any) -> list[Any]:
    return await conn.fetch(f"SELECT {_TEAM} FROM teams ORDER BY name LIMIT 1000")


async def set_members(conn: Any, team_id: uuid.UUID, agent_ids: Sequence[str]) -> None:
    await conn.execute("DELETE FROM team_members WHERE team_id = $1", team_id)
    if agent_ids:
        await conn.executemany("INSERT INTO team_members (team_id, agent_id) VALUES ($1, $2)",
                               [(team_id, a) for a in agent_ids])


async def members(conn: Any, team_id: uuid.UUID) -> list[str]:
    return [r[0] for r in await conn.fetch(
        "SELECT agent_id FROM team_members WHERE team_id = $1 ORDER BY agent_id", team_id)]


async def unknown_agents(conn: Any, agent_ids: Sequence[str]) -> list[str]:
    """The ids that have no agent profile of a user."""
    known = {r[0] for r in await conn.fetch(
        f"SELECT a.id FROM {_AGENTS_OF_USERS} WHERE a.id = ANY($1::text[])", list(agent_ids))}
    return [a for a in agent_ids if a not in known]


async def lock_team_agents(conn: Any, team_id: uuid.UUID) -> list[Any]:
    """Lock the team's agents in a fixed order: concurrent assignments to one team serialise
    here, so loads read after this cannot be raced past an agent's capacity. Only agents of
    active users: a deactivated user (or an id that is no user) is offered nothing."""
    return await conn.fetch(
        f"SELECT {', '.join('a.' + c.strip() for c in _AGENT.split(','))} FROM agents a "
        "JOIN team_members m ON m.agent_id = a.id JOIN user_projection u ON u.id = a.id AND u.active "
        "WHERE m.team_id = $1 ORDER BY a.id FOR UPDATE OF a",
        team_id,
    )


async def open_loads(conn: Any, agent_ids: Sequence[str]) -> list[Any]:
    return await conn.fetch(
        "SELECT assignee_id, coalesce(channel, 'api') AS channel, count(*) AS n FROM tickets "
        "WHERE assignee_id = ANY($1::text[]) AND status NOT IN ('solved', 'closed') GROUP BY 1, 2",
        list(agent_ids),
    )


async def bump_assignment_seq(conn: Any, agent_id: str) -> None:
    await conn.execute("UPDATE agents SET last_assigned_seq = nextval('assignment_seq') WHERE id = $1", agent_id)


async def list_rules(conn: Any, *, enabled_only: bool) -> list[Any]:
    where = " WHERE enabled" if enabled_only else ""
    return await conn.fetch(
        f"SELECT id, name, position, definition, enabled, created_at, updated_at FROM routing_rules{where} "
        "ORDER BY position, created_at, id"
    )


async def insert_rule(conn: Any, *, rule_id: uuid.UUID, name: str, position: int, definition: dict[str, Any],
                      enabled: bool) -> Any:
    return await conn.fetchrow(
        "INSERT INTO routing_rules (id, name, position, definition, enabled) VALUES ($1, $2, $3, $4, $5) "
        "RETURNING id, name, position, definition, enabled, created_at, updated_at",
        rule_id, name, position, definition, enabled,
    )


async def update_rule(conn: Any, *, rule_id: uuid.UUID, name: str, position: int, definition: dict[str, Any],
                      enabled: bool) -> Any:
    return await conn.fetchrow(
        "UPDATE routing_rules SET name = $2, position = $3, definition = $4, enabled = $5, updated_at = now() "
        "WHERE id = $1 RETURNING id, name, position, definition, enabled, created_at, updated_at",
        rule_id, name, position, definition, enabled,
    )


async def delete_rule(conn: Any, rule_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval("DELETE FROM routing_rules WHERE id = $1 RETURNING true", rule_id))


async def customer_tier(conn: Any, *, kind: str, value: str, value_bidx: str) -> str | None:
    """The tier of the customer an identity belongs to: by its blind index (``pii.codec``), or by
    the plaintext of a projection row written before migration 0018 (compared, never stored)."""
    return await conn.fetchval(
        "SELECT t.tier FROM customer_identity_projection p JOIN customer_tier_projection t "
        "ON t.customer_id = p.customer_id WHERE p.kind = $1 "
        "AND (p.value_bidx = $3 OR (p.value_bidx IS NULL AND p.value = $2))",
        kind, value, value_bidx,
    )


async def due_offers(conn: Any, *, limit: int) -> list[Any]:
    """Offered tickets whose team's accept timeout has passed, locked, skipping ones in use."""
    return await conn.fetch(
        "SELECT t.id FROM tickets t JOIN teams tm ON tm.id = t.team_id "
        "WHERE t.assignment_state = 'offered' AND t.deleted_at IS NULL AND tm.accept_timeout_s IS NOT NULL "
        "AND t.offered_at + make_interval(secs => tm.accept_timeout_s) <= clock_timestamp() "
        "ORDER BY t.offered_at LIMIT $1 FOR UPDATE OF t SKIP LOCKED",
        limit,
    )


# --- the gateway's users (users.events; routing/users.py) -------------------------------------

_USER = "id, display_name, role, active, version"


async def user_of(conn: Any, user_id: str) -> Any:
    return await conn.fetchrow(f"SELECT {_USER} FROM user_projection WHERE id = $1", user_id)


async def lock_user(conn: Any, user_id: str) -> Any:
    return await conn.fetchrow(f"SELECT {_USER} FROM user_projection WHERE id = $1 FOR UPDATE", user_id)


async def store_user(conn: Any, *, user_id: str, display_name: str | None, role: str, active: bool,
                     version: int) -> bool:
    """Store the user if ``version`` is newer than the stored one; False: older or the same, kept."""
    return bool(await conn.fetchval(
        "INSERT INTO user_projection (id, display_name, role, active, version) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (id) DO UPDATE SET display_name = EXCLUDED.display_name, role = EXCLUDED.role, "
        "active = EXCLUDED.active, version = EXCLUDED.version, updated_at = now() "
        "WHERE user_projection.version < EXCLUDED.version RETURNING true",
        user_id, display_name, role, active, version,
    ))


async def insert_agent_of_user(conn: Any, *, agent_id: str, display_name: str) -> bool:
    """A new user's profile (offline, default capacity, no skills, no teams); False: one exists."""
    return bool(await conn.fetchval(
        "INSERT INTO agents (id, display_name, status) VALUES ($1, $2, 'offline') "
        "ON CONFLICT (id) DO NOTHING RETURNING true", agent_id, display_name))


async def rename_agent(conn: Any, *, agent_id: str, display_name: str) -> None:
    await conn.execute("UPDATE agents SET display_name = $2, updated_at = now() WHERE id = $1 AND display_name <> $2",
                       agent_id, display_name)


async def take_agent_offline(conn: Any, agent_id: str) -> None:
    await conn.execute("UPDATE agents SET status = 'offline', updated_at = now() WHERE id = $1 AND status <> 'offline'",
                       agent_id)


async def open_tickets_assigned_to(conn: Any, agent_id: str) -> list[uuid.UUID]:
    return [r[0] for r in await conn.fetch(
        "SELECT id FROM tickets WHERE assignee_id = $1 AND status NOT IN ('solved', 'closed') ORDER BY id", agent_id)]
