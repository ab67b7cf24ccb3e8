"""All SQL of triggers, automations and their runs.

``triggers`` and ``automations`` have the same shape (migration 0014), so every statement takes
the table from ``TABLES`` (never from a request). Rules are edited in place: ``version`` counts
the edits and is the ETag; a write names the version it expects in its ``WHERE`` so two admins
holding the same ETag cannot both win.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

#: rule kind -> its table
TABLES = {"trigger": "triggers", "automation": "automations"}
_COLUMNS = ("id, name, description, position, active, conditions, actions, version, created_by, created_at, "
            "updated_by, updated_at")


def _table(kind: str) -> str:
    return TABLES[kind]


async def list_rules(conn: Any, kind: str, *, active_only: bool = False) -> list[Any]:
    """Every rule of ``kind`` in evaluation order (position, then id)."""
    where = "WHERE active" if active_only else ""
    return await conn.fetch(f"SELECT {_COLUMNS} FROM {_table(kind)} {where} ORDER BY position, id")


async def get_rule(conn: Any, kind: str, rule_id: uuid.UUID, *, lock: bool = False) -> Any:
    suffix = " FOR UPDATE" if lock else ""
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM {_table(kind)} WHERE id = $1{suffix}", rule_id)


async def insert_rule(conn: Any, kind: str, *, rule_id: uuid.UUID, values: Mapping[str, Any], actor: str) -> Any:
    return await conn.fetchrow(
        f"INSERT INTO {_table(kind)} (id, name, description, position, active, conditions, actions, created_by, "
        f"updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING {_COLUMNS}",
        rule_id, values["name"], values["description"], values["position"], values["active"], values["conditions"],
        values["actions"], actor,
    )


async def update_rule(conn: Any, kind: str, *, rule_id: uuid.UUID, values: Mapping[str, Any], actor: str) -> Any:
    """Replace the rule's definition and bump its version (the caller holds the row lock)."""
    return await conn.fetchrow(
        f"UPDATE {_table(kind)} SET name = $2, description = $3, position = $4, active = $5, conditions = $6, "
        f"actions = $7, version = version + 1, updated_by = $8, updated_at = now() WHERE id = $1 "
        f"RETURNING {_COLUMNS}",
        rule_id, values["name"], values["description"], values["position"], values["active"], values["conditions"],
        values["actions"], actor,
    )


async def delete_rule(conn: Any, kind: str, rule_id: uuid.UUID) -> None:
    await conn.execute(f"DELETE FROM {_table(kind)} WHERE id = $1", rule_id)


async def lock_all(conn: Any, kind: str) -> list[Any]:
    """Every rule of ``kind``, locked, for a reordering (ids only)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('rules:order:' || $1))", kind)
    return await conn.fetch(f"SELECT id FROM {_table(kind)} ORDER BY position, id FOR UPDATE")


async def set_positions(conn: Any, kind: str, *, ordered_ids: Sequence[uuid.UUID], step: int, actor: str) -> None:
    """Number the rules ``step`` apart in the given order; only rules whose position moves get a
    new version (their ETag changes with what an admin would see)."""
    await conn.execute(
        f"UPDATE {_table(kind)} r SET position = o.position, version = r.version + 1, updated_by = $3, "
        f"updated_at = now() FROM (SELECT id, (ord - 1) * $2 AS position FROM unnest($1::uuid[]) "
        f"WITH ORDINALITY AS u(id, ord)) o WHERE r.id = o.id AND r.position <> o.position",
        list(ordered_ids), step, actor,
    )


async def notify_automations_changed(conn: Any) -> None:
    """Tell the schedulers (at commit) that automations changed: they re-plan open tickets."""
    await conn.execute("SELECT pg_notify('ticket_automations_changed', '')")


# --------------------------------------------------------------------------- runs

_RUN_COLUMNS = "id, ticket_id, run_id, rule_kind, rule_id, rule_name, pass, changes, effects, bounded, actor, at"


async def insert_runs(conn: Any, runs: Sequence[Mapping[str, Any]]) -> None:
    """Record the rules that fired in one run (one row each)."""
    await conn.executemany(
        "INSERT INTO rule_runs (ticket_id, run_id, rule_kind, rule_id, rule_name, pass, changes, effects, bounded, "
        "actor, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, clock_timestamp())",
        [(r["ticket_id"], r["run_id"], r["rule_kind"], r["rule_id"], r["rule_name"], r["pass"], r["changes"],
          r["effects"], r["bounded"], r["actor"]) for r in runs],
    )


async def list_runs(conn: Any, *, ticket_id: uuid.UUID, after_id: int, limit: int) -> list[Any]:
    return await conn.fetch(
        f"SELECT {_RUN_COLUMNS} FROM rule_runs WHERE ticket_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        ticket_id, after_id, limit,
    )


# --------------------------------------------------------------------------- facts


async def last_replies(conn: Any, ticket_id: uuid.UUID) -> Any:
    """When the customer and an agent last wrote publicly on the ticket (None: never)."""
    return await conn.fetchrow(
        "SELECT max(created_at) FILTER (WHERE author_kind = 'customer') AS customer_replied_at, "
        "max(created_at) FILTER (WHERE author_kind = 'agent') AS agent_replied_at "
        "FROM messages WHERE ticket_id = $1 AND public",
        ticket_id,
    )
