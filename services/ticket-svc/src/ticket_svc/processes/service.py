"""Process definitions at the database edge: saving versions, deactivating, finding the one a
ticket starts with. Flushes, never commits: the endpoint's transaction does.

A running ticket keeps the version it started with (it records the number and reads that
version with ``version_steps``), so nothing here ever changes a stored version.
"""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass
from typing import Any

from fastapi.exceptions import RequestValidationError

from helpdesk_common.concurrency import check_version
from helpdesk_common.problems import Problem

from . import repository
from .definitions import (NOT_FOUND, DefinitionError, ProcessIn, StepDef, definition_errors, dump_steps, parse_steps,
                          referenced_teams)

CACHE_SECONDS = 2.0
_cache: dict[str, tuple[float, Any]] = {}
#: bumped by every save here, so caches derived from definitions (runtime.DEFINED) look again
GENERATION = 0


def invalidate() -> None:
    """Forget cached current definitions (this process's; others expire within CACHE_SECONDS)."""
    global GENERATION
    GENERATION += 1
    _cache.clear()


@dataclass(frozen=True, slots=True)
class Definition:
    """A version a ticket can run: its type, number and parsed steps."""

    ticket_type: str
    version: int
    steps: list[StepDef]


def to_read(row: Any) -> dict[str, Any]:
    return {"ticket_type": row["ticket_type"], "version": row["version"], "active": row["active"],
            "steps": row["steps"], "created_by": row["created_by"], "created_at": row["created_at"]}


def _refuse(errors: list[DefinitionError]) -> RequestValidationError:
    """The same 422 the framework gives for a schema error, so clients read one shape."""
    return RequestValidationError([e.as_pydantic() for e in errors])


async def check_definition(conn: Any, body: ProcessIn) -> None:
    """422 naming each field that breaks a rule across values or names a team that does not exist."""
    errors = definition_errors(body)
    teams = referenced_teams(body.steps)
    known = await repository.existing_teams(conn, sorted({team for _, team in teams}))
    errors.extend(DefinitionError(loc, f"no team {team}", NOT_FOUND) for loc, team in teams if team not in known)
    if errors:
        raise _refuse(errors)


async def save(conn: Any, *, ticket_type: str, body: ProcessIn, if_match: str | None, created_by: str) -> Any:
    """Append the next version of the type's process (412 when ``If-Match`` is stale; 0 names
    "no version yet")."""
    await check_definition(conn, body)
    latest = await repository.lock_type(conn, ticket_type)
    check_version(latest["version"] if latest else 0, if_match, what="process")
    row = await repository.insert_next(conn, ticket_type=ticket_type, active=True, steps=dump_steps(body.steps),
                                       created_by=created_by)
    invalidate()
    return row


async def deactivate(conn: Any, *, ticket_type: str, if_match: str | None, created_by: str) -> Any:
    """Record that the type has no process from now on (a version without steps). Tickets
    running an earlier version finish it."""
    latest = await repository.lock_type(conn, ticket_type)
    if latest is None or not latest["active"]:
        raise not_found(ticket_type)
    check_version(latest["version"], if_match, what="process")
    row = await repository.insert_next(conn, ticket_type=ticket_type, active=False, steps=[], created_by=created_by)
    invalidate()
    return row


def not_found(ticket_type: str) -> Problem:
    return Problem(404, "not-found", "Process not found", f"No active process for ticket type {ticket_type!r}.")


async def current(conn: Any, ticket_type: str) -> Any:
    """The type's active version row, or None (never defined, or deactivated)."""
    row = await repository.latest(conn, ticket_type)
    return row if row is not None and row["active"] else None


async def current_definition(conn: Any, ticket_type: str | None) -> Definition | None:
    """The definition a new process of this ticket type starts with (cached CACHE_SECONDS per
    process, like forms: a ticket created right after a save may still start the previous one)."""
    if not ticket_type:
        return None
    hit = _cache.get(ticket_type)
    if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
        return hit[1]
    row = await current(conn, ticket_type)
    found = Definition(row["ticket_type"], row["version"], parse_steps(row["steps"])) if row else None
    _cache[ticket_type] = (time.monotonic(), found)
    return found


async def version_steps(conn: Any, ticket_type: str, number: int) -> list[StepDef] | None:
    """The steps of one stored version (what a running ticket follows), or None."""
    row = await repository.version(conn, ticket_type, number)
    return parse_steps(row["steps"]) if row else None


# --------------------------------------------------------------------------- list cursors


def encode_cursor(ticket_type: str) -> str:
    return base64.urlsafe_b64encode(ticket_type.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The ticket type a page ends at; 400 ``invalid-cursor`` for anything this API did not issue."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    if not text or len(text) > 64 or "\x00" in text:
        raise Problem(400, "invalid-cursor", "Invalid cursor", "The cursor is malformed.")
    return text


async def page(conn: Any, *, cursor: str | None, limit: int) -> tuple[list[Any], str | None]:
    rows = await repository.list_current(conn, after=decode_cursor(cursor) if cursor else None, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1]["ticket_type"]) if more and rows else None
