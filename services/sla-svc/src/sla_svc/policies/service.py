"""Policy rules; flushes, never commits (endpoints own the transaction)."""

from __future__ import annotations

import uuid
import weakref
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from helpdesk_common.concurrency import conflict
from helpdesk_common.problems import Problem

from ..calendars_api import repository as calendars
from . import matching, repository
from .schemas import PolicyIn

_DEFINITION_FIELDS = ("conditions", "targets", "pause_statuses", "warning_fractions", "escalations")


def as_read(row: Any) -> dict[str, Any]:
    d = row.definition
    return {"id": row.id, "name": row.name, "position": row.position, "enabled": row.enabled,
            **{k: d[k] for k in _DEFINITION_FIELDS}, "version": row.version,
            "created_at": row.created_at, "updated_at": row.updated_at}


async def _definition(conn: AsyncConnection, body: PolicyIn) -> dict[str, Any]:
    """The stored document; refuses business targets on calendars that do not exist (422)."""
    for metric, target in body.targets.items():
        if target.calendar_id is not None and not await calendars.exists(conn, target.calendar_id):
            raise Problem(422, "validation-error", "Validation failed", "One or more fields are invalid.",
                          errors=[{"field": f"body.targets.{metric}.calendar_id", "message": "no such calendar",
                                   "code": "not_found"}])
    dumped = body.model_dump(mode="json")
    dumped["conditions"] = {k: v for k, v in dumped["conditions"].items() if v}
    return {k: dumped[k] for k in _DEFINITION_FIELDS}


async def create(conn: AsyncConnection, *, body: PolicyIn) -> dict[str, Any]:
    position = body.position if body.position is not None else await repository.next_position(conn)
    row = await repository.insert(conn, policy_id=uuid.uuid4(), name=body.name, position=position,
                                  enabled=body.enabled, definition=await _definition(conn, body))
    return as_read(row)


async def replace(conn: AsyncConnection, *, policy_id: uuid.UUID, body: PolicyIn,
                  expected_versions: list[int] | None) -> dict[str, Any]:
    current = await repository.get(conn, policy_id)
    if current is None:
        raise not_found()
    position = body.position if body.position is not None else current.position
    row = await repository.update(conn, policy_id=policy_id, name=body.name, position=position,
                                  enabled=body.enabled, definition=await _definition(conn, body),
                                  expected_versions=expected_versions)
    if row is None:
        await raise_conflict(conn, policy_id)
    return as_read(row)


async def delete(conn: AsyncConnection, *, policy_id: uuid.UUID, expected_versions: list[int] | None) -> None:
    if not await repository.delete(conn, policy_id, expected_versions=expected_versions):
        await raise_conflict(conn, policy_id)


async def raise_conflict(conn: AsyncConnection, policy_id: uuid.UUID) -> None:
    """A conditional write changed nothing: 404 when the policy is gone, else the 412 of the
    shared If-Match rule with the version it has now."""
    current = await repository.get(conn, policy_id)
    if current is None:
        raise not_found()
    raise conflict(current.version, "policy")


def not_found() -> Problem:
    return Problem(404, "not-found", "Not found", "No such policy.")


#: per engine (one database): (generation, policies). Every policy write bumps the
#: recalculation generation in its own transaction, so policies read at one generation stay
#: valid for every caller that reads the same generation from the same database; the cache
#: saves a query and a rebuild per ticket event
_ACTIVE: weakref.WeakKeyDictionary[Any, tuple[int, list[matching.Policy]]] = weakref.WeakKeyDictionary()


async def active_policies(conn: AsyncConnection, *, generation: int | None = None) -> list[matching.Policy]:
    """Enabled policies in matching order; ``generation`` (read by the caller before this call,
    in the same transaction) lets repeated calls share one read."""
    engine = conn.sync_engine
    cached = _ACTIVE.get(engine) if generation is not None else None
    if cached is not None and cached[0] == generation:
        return cached[1]
    policies = [matching.from_definition(r.id, r.name, r.definition) for r in await repository.enabled_in_order(conn)]
    if generation is not None:
        _ACTIVE[engine] = (generation, policies)
    return policies


def cached_active(conn: AsyncConnection) -> tuple[int, list[matching.Policy]] | None:
    """The generation and enabled policies the last read cached for this database, without a
    read. Whoever times a ticket with them checks, in the statement that writes the timers,
    that the generation is still current (``tickets.repository.insert_created``)."""
    return _ACTIVE.get(conn.sync_engine)
