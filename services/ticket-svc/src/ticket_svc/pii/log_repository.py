"""The only place with SQL for ``pii_access_log`` (bare asyncpg): the audit of unmasked requester
reads and exports (``pii.audit``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

#: (actor, actor_role, ticket_id, fields, reason, purpose, route, request_id)
Entry = tuple[str, str | None, uuid.UUID, Sequence[str], str, str, str, str | None]


async def record(conn: Any, entries: Sequence[Entry]) -> None:
    """Every entry in one statement (a list of 100 tickets is one insert)."""
    if not entries:
        return
    await conn.execute(
        "INSERT INTO pii_access_log (actor, actor_role, ticket_id, fields, reason, purpose, route, request_id) "
        "SELECT e.actor, e.role, e.ticket_id, string_to_array(e.fields, ','), e.reason, e.purpose, e.route, e.rid "
        "FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[]) "
        "AS e(actor, role, ticket_id, fields, reason, purpose, route, rid)",
        *[list(column) for column in zip(*[(a, r, t, ",".join(f), why, p, route, rid)
                                           for a, r, t, f, why, p, route, rid in entries], strict=True)])


_COLUMNS = "id, at, actor, actor_role, ticket_id, fields, purpose, reason, route, request_id"


async def page(conn: Any, *, ticket_id: uuid.UUID | None, actor: str | None, purpose: str | None,
               since: datetime | None, before_id: int | None, limit: int) -> list[Any]:
    """Rows newest first (keyset on id), filtered by ticket, actor, purpose, time
    (``ix_pii_access_log_ticket``, ``ix_pii_access_log_actor``)."""
    return await conn.fetch(
        f"SELECT {_COLUMNS} FROM pii_access_log WHERE ($1::uuid IS NULL OR ticket_id = $1) "
        "AND ($2::text IS NULL OR actor = $2) AND ($3::text IS NULL OR purpose = $3) "
        "AND ($4::timestamptz IS NULL OR at >= $4) AND ($5::bigint IS NULL OR id < $5) ORDER BY id DESC LIMIT $6",
        ticket_id, actor, purpose, since, before_id, limit)

