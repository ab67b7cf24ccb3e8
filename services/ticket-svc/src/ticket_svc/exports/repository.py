"""The exports' SQL (plain SQL on the raw asyncpg connection, like the ticket list's)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from ..tickets.repository import _TICKET_COLUMNS, _list_where

#: One statement, hence one snapshot: the horizon (the oldest transaction still running, every
#: older one being committed or rolled back and visible here) and the rows strictly after the
#: position and below the horizon. A row a running transaction writes will carry that
#: transaction's id, at or above the horizon, so nothing below it can still appear: a page never
#: passes a row that commits later. With a start_time and no cursor the walk starts at the oldest
#: transaction that wrote a ticket updated since then (or at the horizon, whichever is older:
#: a transaction still running may write one), found by ``ix_tickets_updated`` or
#: ``ix_tickets_change_xid_id``, whichever the planner prefers.
_PAGE = """
WITH horizon AS MATERIALIZED (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin),
start AS MATERIALIZED (
  SELECT COALESCE($1::text::xid8,
                  LEAST((SELECT change_xid FROM tickets WHERE updated_at >= $3 ORDER BY change_xid LIMIT 1),
                        (SELECT xmin FROM horizon))) AS xid
)
SELECT h.xmin::text AS export_horizon, p.*
FROM horizon h CROSS JOIN start s LEFT JOIN LATERAL (
  SELECT {columns}, change_xid::text AS export_xid FROM tickets
  WHERE (change_xid, id) > (s.xid, $2::uuid) AND change_xid < h.xmin {where}
  ORDER BY change_xid, id LIMIT $4
) p ON true
"""


async def change_page(conn: Any, *, after_xid: int | None, after_id: uuid.UUID, start_time: datetime | None,
                      scope: dict[str, Any], limit: int) -> tuple[int, list[Any]]:
    """(horizon, up to ``limit`` rows) after ``(after_xid, after_id)`` in change order.

    ``after_xid`` None: start from ``start_time`` (required then). ``scope`` is the caller's
    visibility as list filters (``policy.list_scope``), so an agent's export holds what their
    ticket list holds. Rows carry ``export_xid`` (text) besides the ticket's columns.
    """
    args: list[Any] = [None if after_xid is None else str(after_xid), after_id, start_time, limit]
    where = _list_where(scope, args)
    if start_time is not None:
        where.append("updated_at >= $3")
    sql = _PAGE.format(columns=_TICKET_COLUMNS, where="".join(f" AND {w}" for w in where))
    rows = await conn.fetch(sql, *args)
    horizon = int(rows[0]["export_horizon"])
    return horizon, [r for r in rows if r["id"] is not None]
